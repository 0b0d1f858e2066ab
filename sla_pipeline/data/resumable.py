"""Long runs over many items that survive being stopped: each result is appended to a JSON Lines file as soon
as it is done, and a rerun, having read back what is there, passes only the rest (sampling, forks, judging,
evaluation answers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from sla_pipeline.data.jsonl import JsonlWriter

T = TypeVar("T")


async def run_resumable(todo: Sequence[T], work: Callable[[T], Awaitable[list[dict]]], out: Path, *, total: int,
                        concurrency: int, desc: str, unit: str) -> None:
    """Awaits `work` on every item of `todo`, at most `concurrency` at once (so that the engine batches them),
    and appends the records each returns to `out` when it returns. The progress bar counts `total` items, the
    `total - len(todo)` done before included."""
    limit = asyncio.Semaphore(concurrency)
    with JsonlWriter(out) as writer, tqdm(total=total, initial=total - len(todo), desc=desc, unit=unit,
                                          dynamic_ncols=True) as bar:
        async def one(item: T) -> None:
            async with limit:
                records = await work(item)
            for record in records:
                writer.write(record)
            bar.update()

        await asyncio.gather(*(one(it) for it in todo))
