"""`sla judge-check`: every judge method's agreement with pairs whose better side is known (check.py), per
judge model; writes the report JSON and keeps every judged pair under --cache, so a rerun resumes."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from sla_engine.store import DEFAULT_MODEL
from sla_pipeline.cli_args import comma_list
from sla_pipeline.judges.opening import METHODS


def add_parser(sub) -> None:
    p = sub.add_parser("judge-check", help="validate judges on pairs whose better side is known",
                       description="Runs each judge method (pointwise, reference, checklist, pairwise; classifier for "
                                   "a sequence-classification folder) on dpo_en_demo pairs, MT-Bench references "
                                   "against the policy's answers, and a sanity tier, and writes agreement, its "
                                   "95%% interval and position bias per judge and method to --out.")
    p.set_defaults(run=judge_check_command)
    p.add_argument("--out", type=Path, required=True, help="the report JSON")
    p.add_argument("--judge", action="append", dest="judges", metavar="NAME_OR_FOLDER",
                   help="a packaged causal LM, a local causal-LM folder, or a sequence-classification reward model "
                        "folder; repeatable [default: qwen2.5-coder-1.5b-instruct]")
    p.add_argument("--methods", type=comma_list, default=",".join(METHODS),
                   help="for causal-LM judges [default %(default)s]")
    p.add_argument("--checklist-writer", default="qwen2.5-coder-1.5b-instruct",
                   help="the model that writes the checklists once [default %(default)s]")
    p.add_argument("--policy", default=DEFAULT_MODEL, help="answers the MT-Bench questions [default %(default)s]")
    p.add_argument("--limit", type=int, help="at most this many pairs per tier (a partial run)")
    p.add_argument("--cache", type=Path, default=Path("runs/judge-check"), help="judged pairs [default %(default)s]")


async def policy_answers(policy: str, cache: Path) -> dict[str, str]:
    """The policy's greedy answer to each MT-Bench question with a reference (first turns), drawn once."""
    from sla_pipeline.data.sampling import SamplingSettings, sample_items
    from sla_pipeline.data.sources import mtbench_items
    from sla_pipeline.engines import running_engine

    items = [it for it in mtbench_items(1) if it.reference]
    async with running_engine(policy) as engine:
        got = await sample_items(engine, items, SamplingSettings(samples=1, temperature=1e-3, top_k=1, max_tokens=512),
                                 cache / "mtbench-policy.jsonl", "policy answers")
    return {i: s[0].text for i, s in got.items()}


async def run(args: argparse.Namespace) -> dict:
    from sla_pipeline.judges.check import check, known_pairs, pairs_for
    from sla_pipeline.judges.opening import is_classifier, judge_label, open_judge

    pairs = known_pairs(await policy_answers(args.policy, args.cache), args.limit)
    report: dict = {"tiers": {t: sum(p.tier == t for p in pairs) for t in ("dpo_demo", "mtbench", "sanity")},
                    "judges": {}}
    for name in args.judges or ["qwen2.5-coder-1.5b-instruct"]:
        label = judge_label(name)
        results = {}
        for method in args.methods[:1] if is_classifier(name) else args.methods:  # a classifier has one method, its own
            async with open_judge(name, method, checklist_writer=args.checklist_writer,
                                  checklists=args.cache / "checklists.jsonl") as judge:
                results[judge.name] = await check(judge, pairs_for(judge.name, pairs),
                                                  args.cache / label / f"{judge.name}.jsonl")
        report["judges"][label] = {"methods": results}
    return report


def judge_check_command(args: argparse.Namespace) -> int:
    from sla_pipeline.judges.check import write

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report = write(asyncio.run(run(args)), args.out)
    for judge, entry in report["judges"].items():
        for method, m in entry["methods"].items():
            acc = "-" if m["agreement"] is None else f"{m['agreement']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"
            print(f"{judge} {method}: agreement {acc} on {m['pairs']} pairs, position bias {m['position_bias']}")
    print(report["verdict"])
    return 0
