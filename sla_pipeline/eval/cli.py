"""`sla eval`: strategies against greedy through a running server (run.py), resumable."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from sla_engine.store import DEFAULT_MODEL
from sla_pipeline.cli_args import comma_list
from sla_pipeline.judges.check import REPORT
from sla_pipeline.judges.opening import METHODS


def add_parser(sub) -> None:
    ev = sub.add_parser("eval", help="strategies against greedy through a running server (resumable)",
                        description="Asks the server (the official openai client) for every strategy's answers on "
                                    "held-out items, judges the general sets against the first strategy, grades "
                                    "the checked sets (GSM, MBPP, IFEval), and writes OUT/report.{json,md,png}. "
                                    "Rerun to resume.")
    ev.set_defaults(run=eval_command)
    ev.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server [default %(default)s]")
    ev.add_argument("--api-key", default=os.environ.get("SLA_API_KEY", "none"), help="[env SLA_API_KEY]")
    ev.add_argument("--model", default=DEFAULT_MODEL, help="the served model name [default %(default)s]")
    ev.add_argument("--out", type=Path, required=True, help="folder for answers, verdicts and the report")
    ev.add_argument("--strategy", action="append", dest="strategies", metavar="NAME=JSON",
                    help='a strategy as a `search` body, repeatable; the first is the baseline; `all`: greedy '
                         'and every search at its defaults (rsd needs a server with --target-model) '
                         '[default: greedy={"strategy": "greedy"} and '
                         'sla-2-10-2={"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}]')
    ev.add_argument("--sets", type=comma_list, default="alpaca,mtbench,gsm",
                    help="comma-separated, of alpaca, mtbench, gsm, gsm-validation, mbpp, mbpp-validation, ifeval, "
                         "ifeval-validation (choose settings and heads on the -validation sets, report on the "
                         "test sets without the suffix) [default %(default)s]")
    ev.add_argument("--alpaca", type=int, default=100, help="AlpacaEval held-out instructions [default %(default)s]")
    ev.add_argument("--gsm", type=int, default=200,
                    help="GSM-symbolic held-out variants in gsm and in gsm-validation [default %(default)s]")
    ev.add_argument("--limit", type=int, help="at most this many items per set (quick runs)")
    ev.add_argument("--max-tokens", type=int, default=512, help="[default %(default)s]")
    ev.add_argument("--concurrency", type=int, default=8, help="requests in flight [default %(default)s]")
    ev.add_argument("--judge", default="qwen2.5-coder-1.5b-instruct",
                    help="a packaged or local causal LM, or a sequence-classification reward model folder "
                         "[default %(default)s]")
    ev.add_argument("--judge-method", default="pointwise", choices=METHODS,
                    help="how a causal-LM judge compares two answers (docs/judges.md; validate it first with "
                         "`sla judge-check`); the checklist writer is the judge itself [default %(default)s, "
                         "the best measured]")
    ev.add_argument("--judge-check", type=Path, default=REPORT,
                    help="the `sla judge-check` report the judge and method must have passed before the general "
                         "sets are judged [default %(default)s]")
    ev.add_argument("--unvalidated-judge", action="store_true",
                    help="judge the general sets with a judge that has not passed; the report says so")


def eval_command(args: argparse.Namespace) -> int:
    from sla_pipeline.eval.generation import Strategy
    from sla_pipeline.eval.run import ALL, EvalPlan
    from sla_pipeline.eval.run import run as run_eval

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    strategies = [p for s in args.strategies or [] for p in (ALL if s == "all" else [Strategy.parse(s)])]
    extra = {"strategies": tuple(strategies)} if strategies else {}
    plan = EvalPlan(base_url=args.base_url, out=args.out, model=args.model, api_key=args.api_key,
                    sets=args.sets,
                    sizes={"alpaca": args.alpaca, "gsm": args.gsm, "gsm-validation": args.gsm}, limit=args.limit,
                    max_tokens=args.max_tokens, concurrency=args.concurrency, judge=args.judge,
                    judge_method=args.judge_method, judge_check=args.judge_check,
                    unvalidated_judge=args.unvalidated_judge, **extra)
    import openai

    try:
        run_eval(plan)
    except openai.APIConnectionError as e:
        raise ValueError(f"cannot reach the server at {args.base_url}: {e}") from None
    except openai.APIStatusError as e:
        raise ValueError(f"the server refused a request ({e.status_code}): {e.message}") from None
    print((args.out / "report.md").read_text())
    return 0
