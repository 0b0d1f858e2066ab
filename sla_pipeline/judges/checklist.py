"""The `checklist` judge (RocketEval, arXiv 2503.05142): per instruction a short yes/no checklist, written once
by a local model (the largest one at hand) and stored; each answer is graded item by item from the judge's
P(yes) / (P(yes) + P(no)), and its score is the mean over the items."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from pathlib import Path

from vllm import SamplingParams

from sla_engine.engine import Engine
from sla_pipeline.data.jsonl import JsonlWriter, read_jsonl
from sla_pipeline.judges.methods import (
    ITEM,
    WRITE_CHECKLIST,
    Case,
    Preference,
    ScoreMemo,
    TokenReader,
    chat,
    single_token,
)

MAX_ITEMS = 5


def parse_checklist(text: str) -> list[str]:
    """The questions of a written checklist: lines starting with "- ", "* " or "1." (at most MAX_ITEMS)."""
    items = [m.group(1).strip() for m in re.finditer(r"^\s*(?:[-*]|\d+[.)])\s+(.+)$", text, re.MULTILINE)]
    return [i for i in items if i][:MAX_ITEMS]


def instruction_key(instruction: str) -> str:
    return hashlib.sha256(instruction.encode()).hexdigest()[:20]


class Checklists:
    """Checklists by instruction, written by `writer` when missing and kept in a JSON Lines file."""

    def __init__(self, writer: Engine, path: Path):
        self.writer, self.path = writer, path
        self.known = {r["key"]: r["items"] for r in read_jsonl(path, lambda r: {"key": r["key"], "items": r["items"]})}
        self.lock = asyncio.Lock()

    async def get(self, instruction: str) -> list[str]:
        key = instruction_key(instruction)
        if key not in self.known:
            ids = self.writer.chat_prompt_ids(chat(WRITE_CHECKLIST.format(instruction=instruction)))
            async for out in self.writer.generate(ids, SamplingParams(max_tokens=200, temperature=0.0)):
                pass
            items = parse_checklist(out.outputs[0].text) or ["Does the response follow the instruction?"]
            async with self.lock:
                with JsonlWriter(self.path) as w:
                    w.write({"key": key, "instruction": instruction[:200], "items": items, "writer":
                             self.writer.config.served_name})
                self.known[key] = items
        return self.known[key]


class ChecklistJudge:
    name = "checklist"

    def __init__(self, engine: Engine, checklists: Checklists):
        self.reader, self.checklists = TokenReader(engine), checklists
        tok = engine.tokenizer
        self.yes_no = [single_token(tok, "yes"), single_token(tok, "no")]
        self.memo = ScoreMemo()

    async def score(self, instruction: str, answer: str, items: list[str]) -> float:
        return await self.memo.get((instruction, answer, tuple(items)),
                                   lambda: self.compute(instruction, answer, items))

    async def compute(self, instruction: str, answer: str, items: list[str]) -> float:
        async def one(item: str) -> float:
            lp_yes, lp_no = await self.reader.logprobs(
                chat(ITEM.format(instruction=instruction, answer=answer, item=item)), self.yes_no)
            top = max(lp_yes, lp_no)
            yes, no = math.exp(lp_yes - top), math.exp(lp_no - top)
            return yes / (yes + no)

        grades = await asyncio.gather(*(one(i) for i in items))
        return sum(grades) / len(grades)

    async def prefer(self, case: Case) -> Preference:
        items = await self.checklists.get(case.instruction)
        a, b = await asyncio.gather(self.score(case.instruction, case.first, items),
                                    self.score(case.instruction, case.second, items))
        return Preference(a - b)
