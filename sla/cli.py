"""The `sla` command. Each subcommand is defined beside the code it runs; this module only knows where:

    serve                             server/cli.py                 the OpenAI-compatible API
    models list|pull                  sla_engine/store/cli.py       packaged models
    bank grow|stats                   sla_pipeline/bank/cli.py      the sample bank
    data                              sla_pipeline/data/cli.py      preference pairs
    train, calibrate, score-pairs     sla_pipeline/training/cli.py  reward heads
    eval                              sla_pipeline/eval/cli.py      quality through a running server
    judge-check                       sla_pipeline/judges/cli.py    judges against pairs whose better side is known
    bench                             sla_pipeline/bench/cli.py     cost against greedy, in-process
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "server.cli", "sla_engine.store.cli", "sla_pipeline.bank.cli", "sla_pipeline.data.cli",
    "sla_pipeline.training.cli", "sla_pipeline.eval.cli", "sla_pipeline.judges.cli", "sla_pipeline.bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sla", description="Streaming Looking Ahead inference server.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sla_engine.store import ModelStoreError
    from sla_pipeline.data.packages import DataPackageError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ModelStoreError, DataPackageError, ValueError) as e:
        print(f"sla: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
