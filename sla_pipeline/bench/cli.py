"""`sla bench`: what each strategy costs against greedy, on one engine, in one run (run.py)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from sla_engine.store import DEFAULT_MODEL


def add_parser(sub) -> None:
    bench = sub.add_parser("bench", help="what each strategy costs against greedy, on one engine, in one run",
                           description="Starts the engine(s) in-process, runs greedy and each strategy on the same "
                                       "prompts at each concurrency, prints a Markdown table of costs and ratios to "
                                       "greedy and writes the full JSON to --out. Quality: `sla eval`.")
    bench.set_defaults(run=bench_command)
    bench.add_argument("--model", default=DEFAULT_MODEL, help="packaged name or local folder [default %(default)s]")
    bench.add_argument("--reward-head", type=Path,
                       help="head folder [default: a random channel of width 256: costs are real, decisions are not]")
    bench.add_argument("--target-model", help="the larger model for `rsd` (packaged name or local folder)")
    bench.add_argument("--strategy", action="append", dest="strategies", metavar="NAME=JSON",
                       help="a strategy as a `search` body, repeatable; `all`: every search at its defaults "
                            "(rsd only with --target-model) [default: all]")
    bench.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="[default %(default)s]")
    bench.add_argument("--max-tokens", type=int, default=100, help="per stream [default %(default)s]")
    bench.add_argument("--max-model-len", type=int, default=2048, help="[default %(default)s]")
    bench.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"],
                       help="model dtype [default: float32 on CPU, auto on GPU]")
    bench.add_argument("--out", type=Path, help="also write the JSON here")


def bench_command(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile

    from sla_engine.engine import EngineConfig, start_engines, target_config
    from sla_engine.reward import RewardHead
    from sla_engine.search import make_config
    from sla_engine.store import ModelStore
    from sla_pipeline.bench import run as bench
    from sla_pipeline.eval.generation import Strategy
    from sla_pipeline.eval.run import ALL

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    strategies: list[Strategy] = []
    for text in args.strategies or ["all"]:  # `all` has rsd only with a target; an rsd asked for by name needs one
        strategies += [s for s in ALL if args.target_model or s.search["strategy"] != "rsd"] if text == "all" \
            else [Strategy.parse(text)]
    if not args.target_model and any(s.search.get("strategy") == "rsd" for s in strategies):
        raise ValueError("strategy rsd needs --target-model")
    plan = bench.BenchPlan(tuple(strategies), tuple(args.concurrency), args.max_tokens)
    model = ModelStore().resolve(args.model)
    target = ModelStore().resolve(args.target_model) if args.target_model else None
    live = max((make_config(s.search).max_live_branches for s in strategies), default=1)
    seqs = max(64, live * max(plan.concurrency))

    async def main(head: Path) -> dict:
        config = EngineConfig(model_path=str(model.path), served_name=model.name, max_model_len=args.max_model_len,
                              max_num_seqs=seqs, dtype=args.dtype, reward_head=str(head))
        engine, second = await start_engines(
            config, target_config(config, str(target.path), target.name) if target else None)
        try:
            return await bench.run(engine, second, plan)
        finally:
            engine.shutdown()
            if second:
                second.shutdown()

    with tempfile.TemporaryDirectory() as tmp:
        if args.reward_head:
            RewardHead.load_for(args.reward_head, model.path)
        head = args.reward_head or RewardHead.random(model.path, model.name).save(Path(tmp) / "head")
        result = asyncio.run(main(head))
    result["head"] = str(args.reward_head) if args.reward_head else "random (costs only)"
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(bench.table(result))
    return 0
