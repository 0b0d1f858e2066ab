"""Sampling answers from the policy through our own engine, many requests at once, resumable.

Sampling is temperature + top-k only, with no top-p and no repetition penalty, whatever the model's
generation_config says: search strategies decode without penalties (so these samples are what the head will
score), and on this CPU vLLM's top-p (a sort over the 151k-token vocabulary per row) and penalties halve
the throughput (measured at 64 sequences: 44 tok/s with Qwen's defaults, 88 tok/s without).

Each finished item appends one line per sample to a JSONL file; a restarted run reads the file and only
asks for the samples that are not there yet, so a crash loses nothing but the requests in flight.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine
from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.data.sources import Item


@dataclass(frozen=True)
class SamplingSettings:
    samples: int = 4  # answers per prompt
    temperature: float = 0.8
    top_k: int = 20
    max_tokens: int = 384
    concurrency: int = 16  # prompts in flight (each with `samples` sequences in vLLM's batch)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.samples <= 16:
            raise ValueError(f"samples must be in 1..16, got {self.samples}")
        if not 0.0 < self.temperature <= 2.0:
            raise ValueError(f"temperature must be in (0, 2] (sampling, not greedy), got {self.temperature}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.max_tokens < 1 or self.concurrency < 1:
            raise ValueError("max_tokens and concurrency must be positive")


@dataclass(frozen=True)
class Sample:
    item: str
    index: int
    text: str
    finish_reason: str | None
    tokens: int

    @classmethod
    def from_json(cls, r: dict) -> Sample:
        return cls(r["item"], int(r["index"]), r["text"], r.get("finish_reason"), int(r["tokens"]))


def item_seed(item_id: str, seed: int, start: int = 0) -> int:
    """The seed of the request that draws an item's samples from index `start` on (a rerun with more
    samples per item draws only the missing ones, with their own seed)."""
    key = f"{seed}:{item_id}" if start == 0 else f"{seed}:{item_id}:{start}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")


def read_samples(path: Path) -> dict[str, list[Sample]]:
    by_item: dict[str, list[Sample]] = {}
    for s in read_jsonl(path, Sample.from_json):
        by_item.setdefault(s.item, []).append(s)
    return by_item


async def sample_items(engine: Engine, items: list[Item], settings: SamplingSettings, out: Path,
                       desc: str = "sample") -> dict[str, list[Sample]]:
    """`settings.samples` answers for every item, from `out` where already there, else from the engine (only
    the missing ones: raising `samples` on a rerun adds to what is there)."""
    done = read_samples(out)
    todo = [it for it in items if len(done.get(it.id, ())) < settings.samples]

    async def one(item: Item) -> list[dict]:
        have = done.get(item.id, [])
        params = SamplingParams(n=settings.samples - len(have), temperature=settings.temperature,
                                top_k=settings.top_k, max_tokens=settings.max_tokens,
                                seed=item_seed(item.id, settings.seed, start=len(have)),
                                output_kind=RequestOutputKind.FINAL_ONLY)
        async for result in engine.generate(engine.chat_prompt_ids(item.messages), params):
            pass
        samples = [Sample(item.id, len(have) + c.index, c.text, c.finish_reason, len(c.token_ids))
                   for c in result.outputs]
        done[item.id] = have + samples
        return [s.__dict__ for s in samples]

    await run_resumable(todo, one, out, total=len(items), concurrency=settings.concurrency, desc=desc, unit="prompt")
    return {it.id: done[it.id] for it in items}
