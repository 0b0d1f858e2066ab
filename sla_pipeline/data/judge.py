"""A judge's verdicts on pairs of answers, cached by key: `sla data` labels AlpacaEval pairs with them and
`sla eval` compares a strategy's answers with the baseline's.

The judge is any method of `sla_pipeline/judges` (by default pairwise in both orders, with the order effect
removed: `methods.py`); the verdict is the sign of its margin — "first", "second", or "tie" when the judge
has no preference at all (a judge that only follows the position has none once that is removed). A judge
whose agreement with known pairs is not established (`sla judge-check`) gives verdicts, not evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.judges.methods import Case, Judge

Verdict = Literal["first", "second", "tie"]


def verdict_of(margin: float) -> Verdict:
    return "first" if margin > 0 else "second" if margin < 0 else "tie"


@dataclass(frozen=True)
class Judgement:
    key: str
    verdict: Verdict
    margin: float = 0.0  # > 0: the first answer is better (methods.py)
    position_bias: float = 0.0

    @classmethod
    def from_json(cls, r: dict) -> Judgement:
        if r["verdict"] not in ("first", "second", "tie"):
            raise ValueError(f"verdict must be first, second or tie, got {r['verdict']!r}")
        return cls(r["key"], r["verdict"], float(r.get("margin", 0.0)), float(r.get("position_bias", 0.0)))


async def judge_all(judge: Judge, tasks: list[tuple[str, Case]], out: Path,
                    concurrency: int = 8, desc: str = "judge") -> dict[str, Judgement]:
    """Verdicts for (key, case) tasks, resuming from `out`."""
    done = {j.key: j for j in read_jsonl(out, Judgement.from_json)}

    async def one(task: tuple[str, Case]) -> list[dict]:
        key, case = task
        p = await judge.prefer(case)
        done[key] = Judgement(key, verdict_of(p.margin), p.margin, p.position_bias)
        return [done[key].__dict__]

    await run_resumable([t for t in tasks if t[0] not in done], one, out, total=len(tasks), concurrency=concurrency,
                        desc=desc, unit="pair")
    return {t[0]: done[t[0]] for t in tasks}
