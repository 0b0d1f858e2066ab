"""An in-process `Engine` on its own event loop thread, so synchronous tests can share one per module."""

from __future__ import annotations

import asyncio
import threading

from sla_engine.engine import Engine, EngineConfig


class EngineThread:
    def __init__(self, config: EngineConfig):
        from tests.conftest import require_memory

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
