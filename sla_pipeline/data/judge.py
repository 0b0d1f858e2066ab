"""A pairwise judge that is not the head being trained: another model (by default the packaged
qwen2.5-coder-1.5b-instruct) reads an instruction and two answers and says which is better.

It is asked in both orders; each order's verdict is the likelier of the tokens "A" and "B" as the judge's
first answer token (read from next-token logprobs, no sampling). The pair's verdict is the answer both orders
agree on, else a tie (position bias cancels; ties are not used as pairs).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vllm import SamplingParams

from sla_engine.engine import Engine
from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.resumable import run_resumable

Verdict = Literal["first", "second", "tie"]

SYSTEM = "You are a careful, impartial judge of AI assistant answers."
TEMPLATE = """Which response follows the user's instruction better? Consider helpfulness, correctness, relevance and \
level of detail. Ignore the order in which the responses are shown and their length.

[Instruction]
{instruction}

[Response A]
{a}

[Response B]
{b}

Answer with a single letter: A or B."""


def judge_messages(instruction: str, a: str, b: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": TEMPLATE.format(instruction=instruction, a=a, b=b)}]


def combine(first_shown_first: str, first_shown_second: str) -> Verdict:
    """Both orders' letters → verdict on (first, second). `first_shown_first`: the letter the judge gave
    when the first answer was shown as A; `first_shown_second`: when it was shown as B."""
    if first_shown_first == "A" and first_shown_second == "B":
        return "first"
    if first_shown_first == "B" and first_shown_second == "A":
        return "second"
    return "tie"


@dataclass(frozen=True)
class Judgement:
    key: str
    verdict: Verdict
    logprobs: dict  # {"first_as_A": {"A": lp, "B": lp}, "first_as_B": {...}}

    @classmethod
    def from_json(cls, r: dict) -> "Judgement":
        if r["verdict"] not in ("first", "second", "tie"):
            raise ValueError(f"verdict must be first, second or tie, got {r['verdict']!r}")
        return cls(r["key"], r["verdict"], r["logprobs"])


class PairwiseJudge:
    def __init__(self, engine: Engine):
        self.engine = engine
        tok = engine.tokenizer
        self.letters = {letter: tok.encode(letter, add_special_tokens=False) for letter in "AB"}
        if any(len(ids) != 1 for ids in self.letters.values()):
            raise ValueError(f"judge tokenizer must encode 'A' and 'B' as single tokens, got {self.letters}")

    async def letter_logprobs(self, instruction: str, a: str, b: str) -> dict[str, float]:
        ids = self.engine.chat_prompt_ids(judge_messages(instruction, a, b))
        wanted = [self.letters["A"][0], self.letters["B"][0]]
        params = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=wanted, detokenize=False)
        async for out in self.engine.generate(ids, params):
            pass
        step = out.outputs[0].logprobs[0]
        return {letter: step[tid].logprob if tid in step else -math.inf for letter, tid in zip("AB", wanted)}

    async def compare(self, key: str, instruction: str, first: str, second: str) -> Judgement:
        lp1, lp2 = await asyncio.gather(self.letter_logprobs(instruction, first, second),
                                        self.letter_logprobs(instruction, second, first))
        letter = lambda lp: "A" if lp["A"] >= lp["B"] else "B"  # noqa: E731
        return Judgement(key, combine(letter(lp1), letter(lp2)), {"first_as_A": lp1, "first_as_B": lp2})


async def judge_all(judge: PairwiseJudge, tasks: list[tuple[str, str, str, str]], out: Path,
                    concurrency: int = 8, desc: str = "judge") -> dict[str, Judgement]:
    """Verdicts for (key, instruction, first, second) tasks, resuming from `out`."""
    done = {j.key: j for j in read_jsonl(out, Judgement.from_json)}

    async def one(task: tuple[str, str, str, str]) -> list[dict]:
        done[task[0]] = await judge.compare(*task)
        return [done[task[0]].__dict__]

    await run_resumable([t for t in tasks if t[0] not in done], one, out, total=len(tasks), concurrency=concurrency,
                        desc=desc, unit="pair")
    return {t[0]: done[t[0]] for t in tasks}
