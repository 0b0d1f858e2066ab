"""An in-process `Engine` on its own event loop thread, so synchronous tests can share one per module; the
tiny model with a random head that the strategy tests search over; running one search to its end."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sla_engine.engine import Engine, EngineConfig

if TYPE_CHECKING:
    from tests.helpers.sla_reference import ReferenceModel

PROMPT = [1000 + 37 * i % 5000 for i in range(70)]


class EngineThread:
    def __init__(self, config: EngineConfig):
        from tests.helpers.servers import require_memory

        require_memory()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.engine: Engine = self.run(Engine.start(config))

    def run(self, coro, timeout: float = 600):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.engine.shutdown()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@contextmanager
def tiny_searchable(tmp_path_factory) -> Iterator[tuple[EngineThread, ReferenceModel, Path]]:
    """A tiny llama (seed 1) with a random reward head (seed 11) on an engine thread, the transformers fp32
    reference that recomputes its logits and rewards, and the model's folder."""
    from tests.helpers.sla_reference import ReferenceModel
    from tests.helpers.tiny_models import make_random_head, make_tiny_model

    folder = make_tiny_model("llama", tmp_path_factory.mktemp("tiny-llama"), seed=1)
    head = make_random_head(folder, tmp_path_factory.mktemp("head"), seed=11)
    runner = EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", reward_head=str(head),
                                       max_model_len=1024, kv_cache_gib=0.5, warmup=False))
    try:
        yield runner, ReferenceModel(folder, head), folder
    finally:
        runner.close()


def run(runner: EngineThread, search) -> list:
    """Every piece `search` commits; the engine is left with no request."""
    async def go():
        return [c async for c in search.commits()]

    commits = runner.run(go())
    assert runner.engine.num_unfinished_requests() == 0
    return commits
