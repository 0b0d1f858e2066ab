"""What every search strategy shares: the engine requests it keeps running (any of which it can abort), the
seeds of its sampled branches, and the `Search` base class the strategies derive from."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sla_engine.engine import Engine
from sla_engine.reward.weights import Readout
from sla_engine.search.config import StrategyConfig
from sla_engine.search.primitives import Draw, extend
from sla_engine.search.scored import Chunk, ScoredTokens
from sla_engine.search.stats import SearchStats


class Branches:
    """The engine requests one search has in flight, each a task with an owner (SLA's: the stream that writes
    a branch). Cancelling a task aborts its request in the engine (Engine.generate)."""

    def __init__(self, stats: SearchStats):
        self.stats = stats
        self.running: dict[asyncio.Task, Any] = {}
        self.started = 0

    def start(self, request: Awaitable, owner: Any = None) -> asyncio.Task:
        task = asyncio.ensure_future(request)
        self.running[task] = owner
        self.started += 1
        self.stats.live(len(self.running))
        return task

    async def all_of(self, tasks: list[asyncio.Task]) -> list:
        """The results of `tasks`, in order, once all have finished."""
        results = await asyncio.gather(*tasks)
        for task in tasks:
            self.running.pop(task, None)
        return results

    async def one(self, request: Awaitable):
        """Start one request and wait for its result."""
        [result] = await self.all_of([self.start(request)])
        return result

    def abort(self, tasks: list[asyncio.Task]) -> None:
        """Cancel `tasks` (the caller counts them in the stats: what a pruned branch is depends on the search)."""
        for task in tasks:
            self.running.pop(task, None)
            task.cancel()

    async def close(self) -> None:
        """Abort every request still running and wait until each abort has reached the engine (shielded, so
        that a cancelled caller still waits)."""
        tasks = list(self.running)
        # unfinished, or already cancelled with the caller (a cancelled gather cancels its children)
        self.stats.branches_aborted += sum(1 for t in tasks if not t.done() or t.cancelled())
        for task in tasks:
            task.cancel()
        self.running.clear()
        if tasks:
            await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))


class Seeds:
    """Seeds for sampled branches: reproducible from the request's `seed`, random without one."""

    def __init__(self, seed: int | None):
        self.rng = random.Random(seed)

    def next(self) -> int:
        return self.rng.getrandbits(31)


class Search:
    """What every search holds: its engine, prompt, settings, token budget, stats, request id prefix,
    requests in flight and seeds. A strategy implements `_commits()`, an async generator of the pieces it
    commits (ScoredTokens; the finish reason set on the last), and names its own counters (so a response
    reports them even when zero)."""

    counters: tuple[str, ...] = ()

    def __init__(
        self, engine: Engine, prompt_ids: list[int], config: StrategyConfig, max_tokens: int,
        stats: SearchStats | None = None, request_id: str | None = None, seed: int | None = None,
    ):
        self.engine = engine
        self.prompt_ids = prompt_ids
        self.config = config
        self.max_tokens = max_tokens
        self.stats = stats or SearchStats(settings=config.as_dict())
        self.request_id = request_id or uuid.uuid4().hex
        self.branches = Branches(self.stats)
        self.seeds = Seeds(seed)
        self.stats.counters.update({name: 0 for name in self.counters})

    def readout(self, requested: Readout | None) -> Readout:
        """How this search scores a path: as the request asks, else as the served head was trained to be read
        ("mean" for a Bradley–Terry head, "last" for a value head); reported in the stats."""
        readout = requested or self.engine.readout or "mean"
        self.stats.settings["score"] = readout
        return readout

    async def grow_each(self, paths: Sequence[ScoredTokens], size: int, name: str,
                        draw: Callable[[ScoredTokens], Draw | None]) -> list[Chunk]:
        """Extends every path (a ScoredTokens with an `index`: best-of-N's samples, tree sampling's paths) by up
        to `size` tokens drawn as `draw(path)` says (None: greedy), one engine request each, all at once; the
        path's first request counts as its trunk's only for path 0. Returns what each request added."""
        tasks = [
            self.branches.start(extend(
                self.engine, self.prompt_ids + p.tokens, None, min(size, self.max_tokens - len(p.tokens)), 1,
                f"{self.request_id}-{name}{p.index}-{len(p.tokens)}", draw(p),
            ))
            for p in paths
        ]
        chunks = await self.branches.all_of(tasks)
        for p, chunk in zip(paths, chunks):
            self.stats.ran(chunk, branched=bool(p.index or p.tokens))
            p.grow(chunk, self.max_tokens)
        return chunks

    async def commits(self) -> AsyncIterator[ScoredTokens]:
        """The committed pieces of the answer, in order; each is counted in the stats before it is handed
        out. Closing the generator early aborts every request the search started."""
        try:
            async for piece in self._commits():
                self.stats.committed(piece)
                self._committed()
                yield piece
                if piece.finish_reason:
                    return
        finally:
            await self.branches.close()

    def _commits(self) -> AsyncIterator[ScoredTokens]:
        raise NotImplementedError

    def _committed(self) -> None:
        """Called after each commit is counted, before it is handed out (for counters derived from the stats)."""
