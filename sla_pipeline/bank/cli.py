"""`sla bank grow` (draw more answers into the bank, resumable) and `sla bank stats` (what it holds)."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from sla_engine.store import DEFAULT_MODEL, canonical
from sla_pipeline.bank.problems import JOBS
from sla_pipeline.cli_args import comma_list
from sla_pipeline.domains import DOMAINS


def add_parser(sub) -> None:
    bank = sub.add_parser("bank", help="the sample bank: labelled policy answers kept in the repository")
    bank.set_defaults(run=bank_command)
    cmds = bank.add_subparsers(dest="bank_command", required=True)
    grow = cmds.add_parser("grow", help="draw one domain's samples, forks and rollouts into the bank (resumable)",
                           description="Round robin in slices over validation forks, validation samples, train "
                                       "samples, train forks, validation rollouts and train rollouts (of the sibling "
                                       "pairs drawn before the run); each slice is sealed into a compressed part and "
                                       "counted in BANK/manifest.json. SIGTERM/SIGINT stop it cleanly. Commit the "
                                       "bank folder to keep what it drew.")
    grow.add_argument("--bank", type=Path, default=None, help="[default: bank/MODEL]")
    grow.add_argument("--model", default=DEFAULT_MODEL, help="the policy [default %(default)s]")
    grow.add_argument("--domain", default="gsm", choices=DOMAINS,
                      help="whose problems (sla_pipeline/domains; MBPP has ~238 train problems, IFEval's training "
                           "prompts ~990) [default %(default)s]")
    grow.add_argument("--train-sample-problems", type=int, default=1000, help="[default %(default)s]")
    grow.add_argument("--train-samples", type=int, default=8, help="per problem [default %(default)s]")
    grow.add_argument("--train-fork-problems", type=int, default=1700, help="[default %(default)s]")
    grow.add_argument("--validation-problems", type=int, default=400, help="[default %(default)s]")
    grow.add_argument("--validation-samples", type=int, default=4, help="per problem [default %(default)s]")
    grow.add_argument("--jobs", type=comma_list, default=",".join(JOBS),
                      help="which jobs run round robin, in this order [default %(default)s]")
    grow.add_argument("--slice", type=int, default=50, help="problems per job per turn [default %(default)s]")
    stats = cmds.add_parser("stats", help="print what the bank holds (its manifest's counts and pairs, read from the "
                                          "files), per domain")
    stats.add_argument("--bank", type=Path, required=True)
    stats.add_argument("--domain", choices=DOMAINS, help="only this domain [default: all]")


def bank_command(args: argparse.Namespace) -> int:
    from sla_pipeline.bank.manifest import holdings

    if args.bank_command == "stats":
        print(json.dumps({d: holdings(args.bank, d) for d in ([args.domain] if args.domain else DOMAINS)}, indent=2))
        return 0
    from sla_pipeline.bank import grow
    from sla_pipeline.bank.plan import GrowPlan

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = GrowPlan(args.bank or Path("bank") / canonical(args.model), canonical(args.model),
                         args.train_sample_problems, args.train_fork_problems, args.validation_problems,
                         args.validation_samples, slice=args.slice, jobs=args.jobs,
                         domain=args.domain)
    plan = replace(plan, sampling=replace(plan.sampling, samples=args.train_samples))
    grow.run(plan)
    return 0
