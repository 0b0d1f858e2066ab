"""`sla data`: preference pairs for the reward head, built offline from packaged data
(docs/background.md#reward-transformer, docs/background.md#models-and-data-from-registry-packages).

Stages, each resumable (its outputs are appended as it goes; a rerun skips what is on disk):

    sample   the policy answers GSM problems (`samples` each), AlpacaEval instructions (2 each) and the
             MT-Bench questions that have references (1 each), through our vLLM engine
    judge    the judge model compares the two answers of each AlpacaEval instruction in both orders
    forks    for each GSM problem, the greedy answer and greedy rollouts from forks at SLA's chunk boundaries
             (forks.py): pairs of sibling answers that share a prefix, the choice SLA makes
    pairs    writes pairs/train.jsonl and pairs/heldout.jsonl from the samples and verdicts, plus stats

Pairs: GSM — chosen gives the right final number, rejected a wrong one (answers cut by max_tokens or
without a number are not used); GSM forks — of a greedy answer and a sibling forked from it, the one with the
right final number; AlpacaEval — the judge's winner over the loser (ties dropped); MT-Bench —
the reference answer over the policy's; dpo_demo — the source's own chosen/rejected.
Every item keeps the side of the split it was born on (`split.py`); a pair is never moved across.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sla_pipeline.data import gsm
from sla_pipeline.data.forks import ForkSettings, fork_items, fork_outcomes, fork_pairs, read_forks
from sla_pipeline.data.jsonl import JsonlWriter, read_jsonl
from sla_pipeline.data.judge import Judgement, judge_all
from sla_pipeline.data.pairs import Pair
from sla_pipeline.data.sampling import Sample, SamplingSettings, read_samples, sample_items
from sla_pipeline.data.sources import Item, alpaca_items, dpo_demo_pairs, gsm_items, mtbench_items
from sla_pipeline.engines import running_engine
from sla_pipeline.judges.check import REPORT
from sla_pipeline.judges.methods import Case

STAGES = ("sample", "judge", "forks", "pairs")


@dataclass(frozen=True)
class DataPlan:
    out: Path
    policy: str = "qwen2.5-coder-0.5b-instruct"
    judge: str = "qwen2.5-coder-1.5b-instruct"
    math_prompts: int = 320  # GSM train variants
    math_heldout: int = 60
    general_prompts: int = 480  # AlpacaEval train instructions
    general_heldout: int = 60
    # 8 answers per problem: the policy gets 16 % of these problems right at T=0.8, so with 4 answers only ~1 in
    # 4 problems has both a right and a wrong one; 8 answers roughly double the pairs per generated token
    math: SamplingSettings = field(default_factory=lambda: SamplingSettings(samples=8, max_tokens=384))
    general: SamplingSettings = field(default_factory=lambda: SamplingSettings(samples=2, max_tokens=256))
    pairs_per_prompt: int = 8  # GSM: most (right, wrong) combinations used per problem
    forks: ForkSettings = field(default_factory=ForkSettings)
    judge_concurrency: int = 8
    stages: tuple[str, ...] = STAGES
    judge_check: Path = REPORT  # `sla judge-check`'s report the judge must have passed
    unvalidated_judge: bool = False  # label AlpacaEval pairs with a judge that has not passed

    def __post_init__(self) -> None:
        if bad := set(self.stages) - set(STAGES):
            raise ValueError(f"unknown stages {sorted(bad)}; known: {', '.join(STAGES)}")
        if self.general.samples != 2:
            raise ValueError("general prompts need exactly 2 samples each (one judged pair)")
        for name in ("math_prompts", "math_heldout", "general_prompts", "general_heldout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.pairs_per_prompt < 1:
            raise ValueError("pairs_per_prompt must be >= 1")

    def math_items(self) -> list[Item]:
        """Held-out problems spread through the train ones, so that a run stopped early has both."""
        return interleave(gsm_items("train", self.math_prompts), gsm_items("heldout", self.math_heldout))

    def general_items(self) -> list[Item]:
        items = alpaca_items()
        train = [it for it in items if it.split == "train"][: self.general_prompts]
        return train + [it for it in items if it.split == "heldout"][: self.general_heldout]

    def mtbench_items(self) -> list[Item]:
        return [it for turn in (1, 2) for it in mtbench_items(turn) if it.reference]

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)


def interleave(a: list, b: list) -> list:
    """`a` and `b` merged with `b`'s items spread evenly among `a`'s, each list's order kept."""
    keyed = [((i + 0.5) / len(a), 0, x) for i, x in enumerate(a)] + [((j + 0.5) / len(b), 1, x) for j,
                                                                     x in enumerate(b)]
    return [x for _, _, x in sorted(keyed, key=lambda k: k[:2])]


async def stage_sample(plan: DataPlan) -> None:
    async with running_engine(plan.policy) as engine:
        await sample_items(engine, plan.math_items(), plan.math, plan.path("samples", "gsm.jsonl"), "sample gsm")
        await sample_items(engine, plan.general_items(), plan.general, plan.path("samples", "alpaca.jsonl"),
                           "sample alpaca")
        one = SamplingSettings(samples=1, temperature=plan.general.temperature,
                               max_tokens=plan.general.max_tokens * 2, seed=plan.general.seed)
        await sample_items(engine, plan.mtbench_items(), one, plan.path("samples", "mtbench.jsonl"), "sample mtbench")


async def stage_forks(plan: DataPlan) -> None:
    async with running_engine(plan.policy) as engine:
        await fork_items(engine, plan.math_items(), plan.forks, plan.path("forks", "gsm.jsonl"))


def judge_tasks(items: list[Item], samples: dict[str, list[Sample]]) -> list[tuple[str, Case]]:
    tasks = []
    for it in items:
        got = samples.get(it.id, [])
        if len(got) >= 2 and got[0].text.strip() and got[1].text.strip():
            tasks.append((it.id, Case(it.messages[-1]["content"], got[0].text, got[1].text)))
    return tasks


async def stage_judge(plan: DataPlan) -> None:
    samples = read_samples(plan.path("samples", "alpaca.jsonl"))
    tasks = judge_tasks(plan.general_items(), samples)

    from sla_pipeline.judges.methods import PairwiseJudge

    async with running_engine(plan.judge) as engine:
        await judge_all(PairwiseJudge(engine), tasks, plan.path("judgements", "alpaca.jsonl"), plan.judge_concurrency)


def math_pairs(item: Item, samples: list[Sample], limit: int) -> list[Pair]:
    finished = [s for s in samples if s.finish_reason == "stop" and gsm.extract_answer(s.text) is not None]
    right = [s for s in finished if gsm.is_correct(s.text, item.answer)]
    wrong = [s for s in finished if not gsm.is_correct(s.text, item.answer)]
    # diagonals first: (r0, w0), (r1, w1), ... then (r0, w1), ... so that distinct samples are used first
    span = max(len(right), len(wrong), 1)
    combos = [(right[i], wrong[j]) for i, j in sorted(itertools.product(range(len(right)), range(len(wrong))),
                                                        key=lambda ij: ((ij[1] - ij[0]) % span, ij[0]))]
    return [Pair(f"{item.id}#{r.index}>{w.index}", "gsm", item.id, item.split, item.messages, r.text, w.text,
                 {"method": "gsm_answer", "answer": item.answer, "rejected_answer": gsm.extract_answer(w.text)})
            for r, w in combos[:limit]]


def judged_pair(item: Item, samples: list[Sample], verdict: Judgement) -> Pair | None:
    if verdict.verdict == "tie":
        return None
    win, lose = (samples[0], samples[1]) if verdict.verdict == "first" else (samples[1], samples[0])
    return Pair(f"{item.id}#{win.index}>{lose.index}", "alpaca", item.id, item.split, item.messages, win.text,
                lose.text, {"method": "judge_both_orders", "margin": verdict.margin,
                            "position_bias": verdict.position_bias})


def reference_pair(item: Item, samples: list[Sample]) -> Pair | None:
    if not samples or not samples[0].text.strip():
        return None
    return Pair(f"{item.id}#ref>0", "mtbench", item.id, item.split, item.messages, item.reference,
                samples[0].text, {"method": "reference_over_policy"})


def assemble_pairs(plan: DataPlan) -> dict:
    """Writes pairs/{train,heldout}.jsonl from what the earlier stages left on disk; returns the stats."""
    pairs: list[Pair] = []
    math = read_samples(plan.path("samples", "gsm.jsonl"))
    accuracy = Counter()
    for it in plan.math_items():
        got = math.get(it.id, [])
        accuracy["samples"] += len(got)
        accuracy["right"] += sum(gsm.is_correct(s.text, it.answer) for s in got)
        pairs += math_pairs(it, got, plan.pairs_per_prompt)
    forked = read_forks(plan.path("forks", "gsm.jsonl"))
    outcomes = Counter()
    for it in plan.math_items():
        if it.id in forked:
            pairs += fork_pairs(it, forked[it.id])
            outcomes += fork_outcomes(it, forked[it.id])
    general = read_samples(plan.path("samples", "alpaca.jsonl"))
    verdicts = {j.key: j for j in read_jsonl(plan.path("judgements", "alpaca.jsonl"), Judgement.from_json)}
    for it in plan.general_items():
        if it.id in verdicts and (p := judged_pair(it, general[it.id], verdicts[it.id])):
            pairs.append(p)
    mt = read_samples(plan.path("samples", "mtbench.jsonl"))
    pairs += [p for it in plan.mtbench_items() if (p := reference_pair(it, mt.get(it.id, [])))]
    pairs += [Pair(d.id, "dpo_demo", d.id, d.split, d.messages, d.chosen, d.rejected, {"method": "source_label"})
              for d in dpo_demo_pairs()]

    stats: dict = {"pairs": {},
                   "gsm_sample_accuracy": accuracy["right"] / accuracy["samples"] if accuracy["samples"] else None,
                   "forks": dict(sorted(outcomes.items())),
                   "judge": dict(Counter(v.verdict for v in verdicts.values()))}
    for split in ("train", "heldout"):
        path = plan.path("pairs", f"{split}.jsonl")
        path.unlink(missing_ok=True)
        with JsonlWriter(path) as w:
            for p in pairs:
                if p.split == split:
                    w.write(p.to_json())
        stats["pairs"][split] = dict(Counter(p.source for p in pairs if p.split == split))
    plan.path("pairs", "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def refuse_an_unvalidated_judge(plan: DataPlan) -> None:
    """The judge stage labels training pairs with the `pairwise` method: only a judge that passed
    `sla judge-check` with it (judges/check.py `standing`), unless the plan says otherwise."""
    from sla_pipeline.judges.check import require_validated, standing
    from sla_pipeline.judges.opening import judge_label, method_of

    if "judge" not in plan.stages or not plan.general_items() or plan.unvalidated_judge:
        return
    got = standing(plan.judge_check, judge_label(plan.judge), method_of(plan.judge, "pairwise"))
    require_validated(got, "labels", "leave the judge stage out (--general-prompts 0 --general-heldout 0, "
                                     "or --stages without judge), or pass --unvalidated-judge")


def run(plan: DataPlan) -> dict | None:
    refuse_an_unvalidated_judge(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    plan.path("plan.json").write_text(json.dumps(asdict(plan), indent=2, default=str) + "\n")
    if "sample" in plan.stages:
        asyncio.run(stage_sample(plan))
    if "judge" in plan.stages:
        asyncio.run(stage_judge(plan))
    if "forks" in plan.stages:
        asyncio.run(stage_forks(plan))
    if "pairs" in plan.stages:
        return assemble_pairs(plan)
    return None
