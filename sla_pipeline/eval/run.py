"""`sla eval`: generate every strategy's answers through the server, judge the general sets against the
baseline, grade the checked sets (domains.grade), write the report. Every step is cached under `out`, so
rerunning the same command resumes (and `--limit` runs are a prefix of full runs: their answers are reused)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import openai

from sla_pipeline.eval import report as reports
from sla_pipeline.eval.generation import Generation, Strategy, generate_all
from sla_pipeline.eval.grading import grade_set
from sla_pipeline.eval.judging import comparisons, uncached, verdicts_against_baseline
from sla_pipeline.eval.sets import SETS, EvalSet, load_set
from sla_pipeline.eval.stats import Accuracy, Equity, PairedGain
from sla_pipeline.judges.check import REPORT, require_validated, standing
from sla_pipeline.judges.opening import judge_label, method_of, open_judge

GREEDY = Strategy("greedy", {"strategy": "greedy"})
SLA_DEFAULT = Strategy("sla-2-10-2", {"strategy": "sla", "width": 2, "chunk": 10, "depth": 2})
# `--strategy all`: greedy and every search at its defaults (rsd needs a server started with --target-model)
ALL = (
    GREEDY, SLA_DEFAULT, Strategy("best_of_n-4", {"strategy": "best_of_n"}), Strategy("cards", {"strategy": "cards"}),
    Strategy("tree-8", {"strategy": "tree"}), Strategy("rsd-0.5", {"strategy": "rsd"}),
)


@dataclass(frozen=True)
class EvalPlan:
    base_url: str  # the server, e.g. http://127.0.0.1:8000
    out: Path
    model: str
    strategies: tuple[Strategy, ...] = (GREEDY, SLA_DEFAULT)  # the first is the baseline
    sets: tuple[str, ...] = ("alpaca", "mtbench", "gsm")  # of SETS
    sizes: dict = field(default_factory=lambda: {"alpaca": 100, "mtbench": None, "gsm": 200})  # None: all
    limit: int | None = None  # at most this many items per set (quick runs)
    max_tokens: int = 512
    concurrency: int = 8
    api_key: str = "none"
    judge: str = "qwen2.5-coder-1.5b-instruct"
    judge_method: str = "pointwise"  # judges/opening.py; a classifier folder always judges as "classifier"
    judge_concurrency: int = 8
    judge_check: Path = REPORT  # `sla judge-check`'s report the judge must have passed
    unvalidated_judge: bool = False  # judge the general sets anyway; the report says the judge failed

    def __post_init__(self) -> None:
        if bad := set(self.sets) - set(SETS):
            raise ValueError(f"unknown evaluation sets {sorted(bad)}; known: {', '.join(SETS)}")
        names = [s.name for s in self.strategies]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"strategies need distinct names, got {names}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")
        if self.max_tokens < 1 or self.concurrency < 1 or self.judge_concurrency < 1:
            raise ValueError("max_tokens and the concurrencies must be positive")
        method_of(self.judge, self.judge_method)  # raises on an unknown method

    def judge_standing(self) -> dict:
        """The judge's `sla judge-check` result for its method (judges/check.py `standing`)."""
        return standing(self.judge_check, judge_label(self.judge), method_of(self.judge, self.judge_method))

    @property
    def baseline(self) -> Strategy:
        return self.strategies[0]

    def load(self) -> list[EvalSet]:
        out = []
        for name in self.sets:
            s = load_set(name, self.sizes.get(name))
            out.append(EvalSet(s.name, s.kind, s.items[: self.limit] if self.limit else s.items))
        return out


async def _generate(plan: EvalPlan, sets: list[EvalSet]) -> dict[tuple[str, str], dict[str, Generation]]:
    client = openai.AsyncOpenAI(base_url=f"{plan.base_url.rstrip('/')}/v1", api_key=plan.api_key, max_retries=2,
                                timeout=3600)
    answers = {}
    try:
        for strategy in plan.strategies:
            for s in sets:
                path = plan.out / "answers" / strategy.name / f"{s.name}.jsonl"
                answers[strategy.name, s.name] = await generate_all(
                    client, plan.model, strategy, s.items, plan.max_tokens, path, plan.concurrency,
                    f"{strategy.name} {s.name}")
    finally:
        await client.close()
    return answers


async def _judge(plan: EvalPlan, sets: list[EvalSet], answers) -> dict[tuple[str, str], dict]:
    pairs = [(st, s) for st in plan.strategies[1:] for s in sets if s.kind == "judged"]

    def verdict_path(st: Strategy, s: EvalSet) -> Path:
        return plan.out / "verdicts" / method_of(plan.judge, plan.judge_method) / st.name / f"{s.name}.jsonl"

    pending = sum(uncached(comparisons(s, answers[st.name, s.name], answers[plan.baseline.name, s.name])[1],
                           verdict_path(st, s)) for st, s in pairs)

    async def verdicts(judge) -> dict[tuple[str, str], dict]:
        return {(st.name, s.name): await verdicts_against_baseline(
                    judge, s, answers[st.name, s.name], answers[plan.baseline.name, s.name], verdict_path(st, s),
                    plan.judge_concurrency)
                for st, s in pairs}

    if not pending:  # the judge's engine starts only when something is left to judge
        return await verdicts(None)
    async with open_judge(plan.judge, plan.judge_method, checklist_writer=plan.judge,
                          checklists=plan.out / "checklists.jsonl") as judge:
        return await verdicts(judge)


def run(plan: EvalPlan) -> dict:
    plan.out.mkdir(parents=True, exist_ok=True)
    sets = plan.load()
    judged = any(s.kind == "judged" for s in sets)
    validation = plan.judge_standing() if judged else None
    if validation and not plan.unvalidated_judge:
        require_validated(validation, "equities", "evaluate only gsm / gsm-validation, or pass "
                                                  "--unvalidated-judge (the report then says the judge failed)")
    answers = asyncio.run(_generate(plan, sets))
    verdicts = asyncio.run(_judge(plan, sets, answers))
    report = {"model": plan.model, "base_url": plan.base_url, "judge": plan.judge,
              "judge_method": method_of(plan.judge, plan.judge_method), "judge_validation": validation,
              "baseline": plan.baseline.name,
              "max_tokens": plan.max_tokens, "limit": plan.limit,
              "sets": {s.name: {"kind": s.kind, "items": len(s.items)} for s in sets}, "strategies": {}}
    checked = [s for s in sets if s.kind == "checked"]
    outcomes = {(st.name, s.name): grade_set(s, answers[st.name, s.name],
                                             plan.out / "grades" / st.name / f"{s.name}.jsonl")
                for st in plan.strategies for s in checked}
    correct = {key: [o.correct for o in found] for key, found in outcomes.items()}
    for st in plan.strategies:
        gens = [g for s in sets for g in answers[st.name, s.name].values()]
        equities = {s.name: Equity.of(list(verdicts[st.name, s.name].values()))
                    for s in sets if (st.name, s.name) in verdicts}
        accuracies = {s.name: Accuracy.of(correct[st.name, s.name]) for s in checked}
        checks = {s.name: Accuracy.of([c for o in outcomes[st.name, s.name] for c in o.checks],
                                      groups=[it.id for it, o in zip(s.items, outcomes[st.name, s.name])
                                              for _ in o.checks])
                  for s in checked if any(o.checks for o in outcomes[st.name, s.name])}
        gains = {s.name: PairedGain.of(correct[st.name, s.name], correct[plan.baseline.name, s.name])
                 for s in checked if st != plan.baseline}
        report["strategies"][st.name] = reports.strategy_entry(st.search, gens, equities, accuracies, gains, checks)
    reports.write(report, plan.out)
    return report
