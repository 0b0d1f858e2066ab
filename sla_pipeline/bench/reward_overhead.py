"""Decode speed with vs without the reward channel, same model and engine settings, in one run.

    python -m sla_pipeline.bench.reward_overhead [--model qwen2.5-coder-0.5b-instruct] [--batches 1 8] [--tokens 64]

The reward engine gets a head with random weights (speed does not depend on them) of the paper's width
(256). It is measured twice: reading the reward of every token, as search strategies do (`ratio`), and
decoding plainly, as the server's requests without a search do (`plain_request_ratio`: they ask for no
read-out, so their steps skip the channel and the reserved columns: `channel_steps` counts the forward passes
that ran the channel, 0 for these rows). Prints JSON with per-batch tokens/s (median of alternating rounds)
and the ratios to the engine without a head (1.0 = no overhead; the target is ≥ 0.97).

The three measurements of a round run back to back, so each round also gives paired ratios (`paired`): their
geometric mean over the rounds with a bootstrap 95 % interval, for reading against the plain engine, plain
requests on the reward engine against the plain engine (no channel runs: what two engine processes differ
by), and reading against plain requests on the same engine (what reading itself costs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
from pathlib import Path

from sla_engine.engine import Engine, EngineConfig
from sla_engine.reward import RewardHead
from sla_engine.store import ModelStore
from sla_pipeline.bench.decode_speed import run_batch
from sla_pipeline.eval.stats import bootstrap_ci


def paired_ratio(a: list[float], b: list[float]) -> dict:
    """a / b round by round: the geometric mean of the per-round ratios and its bootstrap 95 % interval."""
    logs = [math.log(x / y) for x, y in zip(a, b, strict=True)]
    low, high = bootstrap_ci(logs)
    return {"ratio": round(math.exp(statistics.fmean(logs)), 3), "ci95": [round(math.exp(low), 3),
                                                                         round(math.exp(high), 3)]}


def paired(rounds: dict[str, list[float]]) -> dict:
    return {"reading_vs_plain_engine": paired_ratio(rounds["reward"], rounds["plain"]),
            "plain_request_vs_plain_engine": paired_ratio(rounds["reward_plain_request"], rounds["plain"]),
            "reading_vs_plain_request": paired_ratio(rounds["reward"], rounds["reward_plain_request"])}


async def main(args: argparse.Namespace) -> dict:
    model = ModelStore().resolve(args.model)
    head_dir = RewardHead.random(model.path, model.name).save(Path(tempfile.mkdtemp(prefix="sla-head-")))
    base = dict(model_path=str(model.path), served_name=model.name, max_num_seqs=max(args.batches), kv_cache_gib=1)
    # Both engines stay up; measurements alternate between them so that drifts of the machine hit both alike
    # (an idle engine does not spin). The figure is the median over the rounds.
    plain = await Engine.start(EngineConfig(**base))
    reward = await Engine.start(EngineConfig(**base, reward_head=str(head_dir)))
    try:
        prompt = plain.chat_prompt_ids([{"role": "user", "content": "Write a short story about a lighthouse."}])
        rows = []
        for batch in args.batches:
            runs = {"plain": [], "reward": [], "reward_plain_request": []}
            steps = {"reward": 0, "reward_plain_request": 0}
            for _ in range(args.repeats):
                for name, engine, read_rewards in (("plain", plain, False), ("reward", reward, True),
                                               ("reward_plain_request", reward, False)):
                    before = await engine.channel_steps()
                    runs[name].append((await run_batch(engine, prompt, batch, args.tokens, read_rewards))["tok_s"])
                    if name in steps:
                        steps[name] += await engine.channel_steps() - before
            p, r, q = (statistics.median(runs[k]) for k in ("plain", "reward", "reward_plain_request"))
            rows.append({"batch": batch, "plain_tok_s": p, "reward_tok_s": r, "ratio": r / p,
                         "reward_plain_request_tok_s": q, "plain_request_ratio": q / p, "channel_steps": steps,
                         "paired": paired(runs), "rounds": runs})
    finally:
        plain.shutdown()
        reward.shutdown()
    return {"model": model.name, "tokens": args.tokens, "repeats": args.repeats, "runs": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result, indent=2))
    for r in result["runs"]:
        print(f"batch {r['batch']}, decode tok/s, paired by round [95 %]: " + ", ".join(
            f"{name} {v['ratio']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]" for name, v in r["paired"].items()))
