"""SLA against greedy decoding on the same engine, in the same run (issue #4's benchmark).

    python loadtest/sla_vs_greedy.py [--model qwen2.5-0.5b-instruct] [--concurrency 1 8] [--max-tokens 100]
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
import statistics
import sys
import tempfile
import time
from pathlib import Path

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine, EngineConfig
from sla_engine.search import SearchStats, SlaConfig, SlaSearch
from sla_engine.store import ModelStore

sys.path.insert(0, str(Path(__file__).parent))
from decode_speed import run_batch  # noqa: E402
from reward_overhead import random_head  # noqa: E402

PROMPTS = [
    "Explain how a refrigerator works, step by step.",
    "Write a Python function that merges two sorted lists, and explain it.",
    "Describe the water cycle to a ten-year-old.",
    "What are the trade-offs between TCP and UDP?",
    "Write a short story about a lighthouse keeper.",
    "How does binary search work? Give an example.",
    "List the main causes of the French Revolution and explain each.",
    "Explain what a hash table is and when to use one.",
]


async def greedy_stream(engine: Engine, prompt: list[int], max_tokens: int) -> dict:
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, detokenize=False,
                            output_kind=RequestOutputKind.DELTA)
    t0, first, n = time.perf_counter(), None, 0
    async for out in engine.generate(prompt, params):
        if first is None and out.outputs[0].token_ids:
            first, first_n = time.perf_counter(), len(out.outputs[0].token_ids)
        n += len(out.outputs[0].token_ids)
    end = time.perf_counter()
    return {"ttft": first - t0, "emitted": n, "generated": n, "rate": (n - first_n) / (end - first) if end > first else None}


async def sla_stream(engine: Engine, prompt: list[int], max_tokens: int, config: SlaConfig, stats: SearchStats) -> dict:
    search = SlaSearch(engine, prompt, config, max_tokens, stats)
    t0, first, n = time.perf_counter(), None, 0
    async for commit in search.commits():
        if first is None:
            first, first_n = time.perf_counter(), len(commit.tokens)
        n += len(commit.tokens)
    end = time.perf_counter()
    return {"ttft": first - t0, "emitted": n, "rate": (n - first_n) / (end - first) if end > first else None}


def summarize(streams: list[dict], wall: float) -> dict:
    rates = [s["rate"] for s in streams if s["rate"]]
    return {
        "streams": len(streams),
        "ttft_s": statistics.mean(s["ttft"] for s in streams),
        "committed_tok_s_per_stream": statistics.mean(rates),
        "tokens_emitted": sum(s["emitted"] for s in streams),
        "wall_s": wall,
    }


async def run_concurrency(engine: Engine, prompts: list[list[int]], c: int, args, config: SlaConfig) -> dict:
    chosen = [prompts[i % len(prompts)] for i in range(c)]
    t0 = time.perf_counter()
    greedy = summarize(await asyncio.gather(*(greedy_stream(engine, p, args.max_tokens) for p in chosen)),
                       time.perf_counter() - t0)
    greedy["generated_per_emitted"] = 1.0
    stats = [SearchStats() for _ in chosen]
    t0 = time.perf_counter()
    sla = summarize(await asyncio.gather(*(sla_stream(engine, p, args.max_tokens, config, s) for p, s in zip(chosen, stats))),
                    time.perf_counter() - t0)
    sla["generated_per_emitted"] = sum(s.tokens_generated for s in stats) / sum(s.tokens_emitted for s in stats)
    prompt_tokens = sum(s.branch_prompt_tokens for s in stats)
    return {
        "concurrency": c, "greedy": greedy, "sla": sla,
        "ratio_committed_tok_s": sla["committed_tok_s_per_stream"] / greedy["committed_tok_s_per_stream"],
        "prefix_cache_hit_rate": sum(s.branch_cached_tokens for s in stats) / prompt_tokens if prompt_tokens else None,
        "peak_live_branches_per_stream": max(s.peak_live_branches for s in stats),
    }


async def main(args: argparse.Namespace) -> dict:
    model = ModelStore().resolve(args.model)
    config = SlaConfig(args.width, args.chunk, args.depth)
    with tempfile.TemporaryDirectory() as tmp:
        head = args.reward_head or str(random_head(model.path, "random-for-speed", Path(tmp) / "head"))
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
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct")
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
