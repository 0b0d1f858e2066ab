"""A strategy's answers against the baseline's, by a judge (`data/judge.py`: the sign of its order-debiased
margin). Verdicts are cached by the texts compared, so a regenerated answer is judged afresh and
a rerun asks the judge nothing it has answered before."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.judge import Judgement, Verdict, judge_all
from sla_pipeline.eval.generation import Generation
from sla_pipeline.eval.sets import EvalSet
from sla_pipeline.judges.methods import Case, Judge

Task = tuple[str, Case]  # (key, the strategy's answer first, the baseline's second; MT-Bench's reference)


def comparison_key(item: str, answer: str, baseline: str) -> str:
    digest = hashlib.sha256(f"{len(answer)}:{answer}{baseline}".encode()).hexdigest()[:16]
    return f"{item}|{digest}"


def comparisons(eval_set: EvalSet, answers: dict[str, Generation],
                baseline: dict[str, Generation]) -> tuple[dict[str, Verdict], dict[str, Task]]:
    """Ties for identical answers (no judge needed), and the judge's tasks for the others, by item."""
    ties: dict[str, Verdict] = {}
    tasks: dict[str, Task] = {}
    for it in eval_set.items:
        mine, base = answers[it.id].text, baseline[it.id].text
        if mine == base:
            ties[it.id] = "tie"
        else:
            tasks[it.id] = (comparison_key(it.id, mine, base),
                            Case(it.messages[-1]["content"], mine, base, reference=it.reference))
    return ties, tasks


def uncached(tasks: dict[str, Task], out: Path) -> int:
    done = {j.key for j in read_jsonl(out, Judgement.from_json)}
    return sum(t[0] not in done for t in tasks.values())


async def verdicts_against_baseline(judge: Judge | None, eval_set: EvalSet, answers: dict[str, Generation],
                                    baseline: dict[str, Generation], out: Path,
                                    concurrency: int) -> dict[str, Verdict]:
    """Per item: "first" if the strategy's answer wins, "second" if the baseline's does, else "tie".
    `judge` may be None when nothing is left to ask (identical answers, or verdicts cached in `out`)."""
    ties, tasks = comparisons(eval_set, answers, baseline)
    if judge is None and uncached(tasks, out):
        raise ValueError("answers differ from the baseline's and are not judged yet, but no judge was given")
    judged = await judge_all(judge, list(tasks.values()), out, concurrency, desc=f"judge {out.parent.name} {out.stem}")
    by_key = {key: j.verdict for key, j in judged.items()}
    return {it.id: ties[it.id] if it.id in ties else by_key[tasks[it.id][0]] for it in eval_set.items}
