"""One strategy's answers, asked of the running server through the official `openai` client (so the
evaluation measures what users get), streamed to time the first token; cached in JSONL and resumable."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import openai

from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.data.sampling import item_seed
from sla_pipeline.data.sources import Item


@dataclass(frozen=True)
class Strategy:
    """A named `search` body, e.g. greedy = {"strategy": "greedy"}."""

    name: str
    search: dict

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise ValueError(f"strategy names are letters, digits, '-', '_' and '.', got {self.name!r}")
        if not isinstance(self.search, dict) or "strategy" not in self.search:
            raise ValueError(f"strategy {self.name}: the search body needs a 'strategy' field, got {self.search!r}")

    @classmethod
    def parse(cls, text: str) -> Strategy:
        """"NAME=JSON", e.g. 'sla-2-10-2={"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}'."""
        name, sep, body = text.partition("=")
        if not sep:
            raise ValueError(f"expected NAME=JSON, got {text!r}")
        try:
            return cls(name.strip(), json.loads(body))
        except json.JSONDecodeError as e:
            raise ValueError(f"strategy {name}: not JSON: {e}") from None


@dataclass(frozen=True)
class Generation:
    item: str
    text: str
    finish_reason: str | None
    tokens_emitted: int  # completion tokens the client received
    tokens_generated: int  # by every engine request the search made (search_stats), else tokens_emitted
    ttft_s: float | None  # request sent → first content delta
    wall_s: float

    @classmethod
    def from_json(cls, r: dict) -> Generation:
        return cls(r["item"], r["text"], r["finish_reason"], int(r["tokens_emitted"]), int(r["tokens_generated"]),
                   r["ttft_s"], float(r["wall_s"]))


async def generate(client: openai.AsyncOpenAI, model: str, item: Item, strategy: Strategy,
                   max_tokens: int) -> Generation:
    start = time.perf_counter()
    ttft = None
    parts: list[str] = []
    finish = usage = stats = None
    stream = await client.chat.completions.create(
        model=model, messages=list(item.messages), max_tokens=max_tokens, seed=item_seed(item.id, 0) % (1 << 31),
        stream=True, stream_options={"include_usage": True}, extra_body={"search": strategy.search})
    async for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta.content
            if delta:
                ttft = ttft if ttft is not None else time.perf_counter() - start
                parts.append(delta)
            finish = chunk.choices[0].finish_reason or finish
        stats = getattr(chunk, "search_stats", None) or stats
        usage = chunk.usage or usage
    emitted = usage.completion_tokens if usage else 0
    generated = stats["tokens_generated"] if stats else emitted
    return Generation(item.id, "".join(parts), finish, emitted, generated, ttft, time.perf_counter() - start)


SETTINGS_FILE = "settings.json"


class StaleAnswersError(ValueError):
    """Cached answers were made with other settings than this run asks for."""


def check_settings(path: Path, settings: dict) -> None:
    """Answers are cached by strategy name: refuse to mix in answers of the same name made with another
    search body or max_tokens (a silent mix would report one setting's quality under another's name)."""
    if path.is_file():
        before = json.loads(path.read_text())
        if before != settings:
            raise StaleAnswersError(f"the answers in {path.parent} were made with {json.dumps(before)}, this run asks "
                                    f"for {json.dumps(settings)}: give the strategy another name or use another --out")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


async def generate_all(client: openai.AsyncOpenAI, model: str, strategy: Strategy, items: tuple[Item, ...],
                       max_tokens: int, out: Path, concurrency: int, desc: str) -> dict[str, Generation]:
    """Answers for every item, from `out` where there, else from the server (`concurrency` requests at once
    so that the engine batches them)."""
    check_settings(out.parent / SETTINGS_FILE, {"search": strategy.search, "max_tokens": max_tokens})
    done = {g.item: g for g in read_jsonl(out, Generation.from_json)}

    async def one(item: Item) -> list[dict]:
        done[item.id] = await generate(client, model, item, strategy, max_tokens)
        return [done[item.id].__dict__]

    await run_resumable([it for it in items if it.id not in done], one, out, total=len(items),
                        concurrency=concurrency, desc=desc, unit="answer")
    return {it.id: done[it.id] for it in items}
