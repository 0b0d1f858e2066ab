"""`sla data`: preference pairs for the reward head from packaged prompts (build.py says how)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from sla_engine.store import DEFAULT_MODEL
from sla_pipeline.cli_args import comma_list
from sla_pipeline.data.build import STAGES as DATA_STAGES
from sla_pipeline.judges.check import REPORT


def add_parser(sub) -> None:
    data = sub.add_parser("data", help="build preference pairs for the reward head (resumable)",
                          description="Samples the policy on packaged prompts, judges general answers, rolls out "
                                      "forks of greedy GSM answers, and writes OUT/pairs/{train,heldout}.jsonl. "
                                      "Rerun the same command to resume.")
    data.set_defaults(run=data_command)
    data.add_argument("--out", type=Path, required=True, help="working folder (samples, verdicts, pairs)")
    data.add_argument("--policy", default=DEFAULT_MODEL, help="model that answers [default %(default)s]")
    data.add_argument("--judge", default="qwen2.5-coder-1.5b-instruct",
                      help="pairwise judge model [default %(default)s]")
    data.add_argument("--judge-check", type=Path, default=REPORT,
                      help="the `sla judge-check` report the judge's pairwise method must have passed before it "
                           "labels AlpacaEval pairs [default %(default)s]")
    data.add_argument("--unvalidated-judge", action="store_true",
                      help="label AlpacaEval pairs with a judge that has not passed")
    data.add_argument("--math-prompts", type=int, default=320, help="GSM train problems [default %(default)s]")
    data.add_argument("--math-heldout", type=int, default=60, help="GSM held-out problems [default %(default)s]")
    data.add_argument("--general-prompts", type=int, default=480,
                      help="AlpacaEval train instructions [default %(default)s]")
    data.add_argument("--general-heldout", type=int, default=60,
                      help="AlpacaEval held-out instructions [default %(default)s]")
    data.add_argument("--math-samples", type=int, default=8, help="answers per GSM problem [default %(default)s]")
    data.add_argument("--math-pairs-per-problem", type=int, default=8,
                      help="most (right, wrong) pairs made from one GSM problem [default %(default)s]")
    data.add_argument("--temperature", type=float, default=0.8, help="sampling temperature [default %(default)s]")
    data.add_argument("--math-max-tokens", type=int, default=384, help="[default %(default)s]")
    data.add_argument("--general-max-tokens", type=int, default=256, help="[default %(default)s]")
    data.add_argument("--forks-per-problem", type=int, default=4,
                      help="GSM forks rolled out per problem (stage forks) [default %(default)s]")
    data.add_argument("--fork-min-ratio", type=float, default=0.1,
                      help="fork only where p(runner-up)/p(greedy) is at least this [default %(default)s]")
    data.add_argument("--fork-max-tokens", type=int, default=512,
                      help="answer budget of greedy answers and their forks [default %(default)s]")
    data.add_argument("--stages", type=comma_list, default=",".join(DATA_STAGES),
                      help="comma-separated subset of %(default)s, run in that order")


def data_command(args: argparse.Namespace) -> int:
    from sla_pipeline.data.build import DataPlan
    from sla_pipeline.data.build import run as build
    from sla_pipeline.data.forks import ForkSettings
    from sla_pipeline.data.sampling import SamplingSettings

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = DataPlan(
        out=args.out, policy=args.policy, judge=args.judge, math_prompts=args.math_prompts,
        math_heldout=args.math_heldout, general_prompts=args.general_prompts, general_heldout=args.general_heldout,
        math=SamplingSettings(samples=args.math_samples, temperature=args.temperature, max_tokens=args.math_max_tokens),
        general=SamplingSettings(samples=2, temperature=args.temperature, max_tokens=args.general_max_tokens),
        pairs_per_prompt=args.math_pairs_per_problem,
        forks=ForkSettings(per_problem=args.forks_per_problem, min_ratio=args.fork_min_ratio,
                           max_tokens=args.fork_max_tokens),
        stages=args.stages,
        judge_check=args.judge_check, unvalidated_judge=args.unvalidated_judge,
    )
    stats = build(plan)
    if stats is not None:
        print(json.dumps(stats, indent=2))
    return 0
