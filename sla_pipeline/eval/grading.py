"""A checked set's answers graded by domains.grade, each outcome written beside the answers
(`grades/STRATEGY/SET.jsonl`: item, correct, checks, failure) for whoever reads a report's failures."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sla_pipeline.domains import grade
from sla_pipeline.domains.outcome import Outcome
from sla_pipeline.eval.generation import Generation
from sla_pipeline.eval.sets import EvalSet

WORKERS = 4  # MBPP answers run in sandboxed subprocesses: a few at once


def grade_set(eval_set: EvalSet, answers: dict[str, Generation], out: Path) -> list[Outcome]:
    """Every item's outcome, in the set's order."""
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda it: grade(it, answers[it.id].text), eval_set.items))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for it, o in zip(eval_set.items, outcomes):
            fh.write(json.dumps({"item": it.id, "correct": o.correct, "checks": list(o.checks),
                                 "failure": o.failure}) + "\n")
    return outcomes
