"""Can the pairwise judge tell answers apart, and how fast is it? Pairs whose better side is known, judged
in both orders exactly as `sla data` and `sla eval` do.

    python -m sla_pipeline.analyses.judge_check [--judge qwen2.5-coder-1.5b-instruct] [--pairs 16] [--data runs/data]

Known pairs: `dpo_demo` (the source's chosen over rejected) and, with --data, GSM pairs built from that
folder's samples (a right final number over a wrong one). Prints JSON per source: verdicts for the better
side / the worse side / ties (the both-orders rule), how often the order-debiased log-odds
(lpA − lpB | better shown as A) − (lpA − lpB | better shown as B) favours the better side, and the
judge's throughput (prompt tokens/s, seconds per pair).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from sla_engine.engine import Engine, EngineConfig
from sla_engine.store import ModelStore
from sla_pipeline.data.build import DataPlan, math_pairs
from sla_pipeline.data.judge import PairwiseJudge, judge_messages
from sla_pipeline.data.sampling import read_samples
from sla_pipeline.data.sources import dpo_demo_pairs


def known_pairs(count: int, data: Path | None) -> dict[str, list[tuple[str, str, str]]]:
    """(instruction, better, worse) per source."""
    out = {"dpo_demo": [(d.messages[-1]["content"], d.chosen, d.rejected) for d in dpo_demo_pairs()[:count]]}
    if data is not None:
        plan = DataPlan(data)
        got = read_samples(plan.path("samples", "gsm.jsonl"))
        pairs = [ps[0] for it in plan.math_items() if (ps := math_pairs(it, got.get(it.id, []), 1))][:count]
        out["gsm"] = [(p.prompt[-1]["content"], p.chosen, p.rejected) for p in pairs]
    return out


async def check(judge: PairwiseJudge, pairs: list[tuple[str, str, str]], concurrency: int) -> dict:
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int, pair: tuple[str, str, str]):
        async with limit:
            return await judge.compare(str(i), *pair)

    tokens = sum(len(judge.engine.chat_prompt_ids(judge_messages(*p))) * 2 for p in pairs)
    start = time.perf_counter()
    verdicts = await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))
    seconds = time.perf_counter() - start
    margin = lambda lp: lp["A"] - lp["B"]  # noqa: E731
    debiased = [margin(v.logprobs["first_as_A"]) - margin(v.logprobs["first_as_B"]) for v in verdicts]
    return {"pairs": len(pairs), "better": sum(v.verdict == "first" for v in verdicts),
            "worse": sum(v.verdict == "second" for v in verdicts), "tie": sum(v.verdict == "tie" for v in verdicts),
            "debiased_prefers_better": sum(d > 0 for d in debiased), "seconds": round(seconds, 1),
            "seconds_per_pair": round(seconds / len(pairs), 2), "prompt_tokens_per_s": round(tokens / seconds, 1)}


async def main(args: argparse.Namespace) -> None:
    model = ModelStore().resolve(args.judge)
    engine = await Engine.start(EngineConfig(str(model.path), model.name, max_model_len=4096))
    try:
        judge = PairwiseJudge(engine)
        result = {source: await check(judge, pairs, args.concurrency)
                  for source, pairs in known_pairs(args.pairs, args.data).items()}
    finally:
        engine.shutdown()
    print(json.dumps({"judge": model.name, **result}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judge", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--pairs", type=int, default=16, help="pairs per source")
    parser.add_argument("--data", type=Path, help="an `sla data` folder with GSM samples")
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
