"""A plain engine for offline work (sampling, judging): a packaged model or local folder, started for as long
as a block runs and shut down after it, however the block ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sla_engine.engine import Engine, EngineConfig
from sla_engine.store import ModelStore


@asynccontextmanager
async def running_engine(model: str, **settings) -> AsyncIterator[Engine]:
    """`settings`: EngineConfig fields (context 4096 and 64 sequences unless given)."""
    resolved = ModelStore().resolve(model)
    engine = await Engine.start(EngineConfig(str(resolved.path), resolved.name,
                                             **{"max_model_len": 4096, "max_num_seqs": 64, **settings}))
    try:
        yield engine
    finally:
        engine.shutdown()
