"""SLA against greedy decoding on the same engine, in the same run (issue #4's benchmark; `sla bench`
measures every strategy the same way, this script adds SLA's hardware limit).

    python -m sla_pipeline.bench.sla_vs_greedy [--model qwen2.5-coder-0.5b-instruct] [--concurrency 1 8] [--max-tokens 100]
                                     [--width 2 --chunk 10 --depth 2] [--out sla_bench.json]

Speed does not depend on what a head has learnt, so without --reward-head a random channel of the paper's
width (256) is attached. For each concurrency c, c streams with different prompts run at once, first all
greedy, then all SLA: time to first token, committed tokens/s per stream (after its first token), tokens
generated per token emitted, and the share of branch prompt tokens served from the prefix cache.
`limit_ratio`: greedy's time per decode step at batch 1 over that at batch width^(depth+1), measured here
too — SLA keeps that many leaves busy to commit one token per step, so it is the best
`ratio_committed_tok_s` any SLA implementation can reach on this hardware.
Prints the JSON and a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from sla_engine.engine import Engine, EngineConfig
from sla_engine.reward import RewardHead
from sla_engine.search import SlaConfig
from sla_engine.store import ModelStore
from sla_pipeline.bench import run as bench
from sla_pipeline.bench.decode_speed import run_batch
from sla_pipeline.bench.run import PROMPTS, BenchPlan
from sla_pipeline.eval.generation import Strategy


async def run_concurrency(engine: Engine, prompts: list[list[int]], c: int, args, config: SlaConfig) -> dict:
    rows = (await bench.run_concurrency(engine, None, prompts, c, BenchPlan((Strategy("sla", config.as_dict()),),
                                                                             (c,), args.max_tokens)))["strategies"]
    greedy, sla = rows["greedy"], rows["sla"]
    return {
        "concurrency": c, "greedy": greedy, "sla": sla,
        "ratio_committed_tok_s": sla["committed_tok_s_per_stream"] / greedy["committed_tok_s_per_stream"],
        "prefix_cache_hit_rate": sla["prefix_cache_hit_rate"],
        "peak_live_branches_per_stream": sla["peak_live_branches_per_stream"],
    }


async def main(args: argparse.Namespace) -> dict:
    model = ModelStore().resolve(args.model)
    config = SlaConfig(args.width, args.chunk, args.depth)
    with tempfile.TemporaryDirectory() as tmp:
        head = args.reward_head or str(RewardHead.random(model.path, model.name).save(Path(tmp) / "head"))
        engine = await Engine.start(EngineConfig(
            model_path=str(model.path), served_name=model.name, reward_head=head,
            max_num_seqs=max(64, config.max_live_branches * max(args.concurrency)),
        ))
    try:
        prompts = [engine.chat_prompt_ids([{"role": "user", "content": p}]) for p in PROMPTS]
        runs = [await run_concurrency(engine, prompts, c, args, config) for c in args.concurrency]
        leaves = config.max_live_branches
        t1 = (await run_batch(engine, prompts[0], 1, 48))["ms_per_step"] / 1000
        tn = (await run_batch(engine, prompts[0], leaves, 48))["ms_per_step"] / 1000
    finally:
        engine.shutdown()
    first = runs[0]
    return {
        "model": model.name, "search": config.as_dict(), "max_tokens": args.max_tokens,
        "head": "given" if args.reward_head else "random (speed only)",
        "greedy": first["greedy"], "sla": first["sla"],
        "ratio_committed_tok_s": first["ratio_committed_tok_s"],
        "prefix_cache_hit_rate": first["prefix_cache_hit_rate"],
        "limit_ratio": t1 / tn,
        "greedy_ms_per_step": {"batch_1": 1000 * t1, f"batch_{leaves}": 1000 * tn},
        "runs": runs,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--reward-head", default=None, help="a trained head folder [default: random, speed only]")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    runs = "; ".join(
        f"c={r['concurrency']}: SLA/greedy committed tok/s {r['ratio_committed_tok_s']:.2f}, "
        f"TTFT {r['sla']['ttft_s']:.2f}s vs {r['greedy']['ttft_s']:.2f}s, "
        f"generated/emitted {r['sla']['generated_per_emitted']:.1f}, cache hit {r['prefix_cache_hit_rate']:.3f}"
        for r in result["runs"]
    )
    print(f"summary: {runs}; limit_ratio {result['limit_ratio']:.2f} "
          f"(goal: ratio >= {0.9 * result['limit_ratio']:.2f} at c={result['runs'][0]['concurrency']})")
