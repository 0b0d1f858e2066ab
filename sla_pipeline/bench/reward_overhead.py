"""Decode speed with vs without the reward channel, same model and engine settings, in one run.

    python -m sla_pipeline.bench.reward_overhead [--model qwen2.5-coder-0.5b-instruct] [--batches 1 8] [--tokens 64]

The reward engine gets a head with random weights (speed does not depend on them) of the paper's width
(256). It is measured twice: reading the reward of every token, as search strategies do (`ratio`), and
decoding plainly, as the server's requests without a search do (`plain_request_ratio`: they ask for no
read-out, so their steps skip the channel and the reserved columns: `channel_steps` counts the forward passes
that ran the channel, 0 for these rows). Prints JSON with per-batch tokens/s (median of alternating rounds)
and the ratios to the engine without a head (1.0 = no overhead; the target is ≥ 0.97).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path

from sla_engine.engine import Engine, EngineConfig
from sla_engine.reward import RewardHead
from sla_engine.store import ModelStore
from sla_pipeline.bench.decode_speed import run_batch


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
                         "rounds": runs})
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
    print("reward engine / plain engine decode tok/s: " + ", ".join(
        f"batch {r['batch']}: {r['ratio']:.3f} reading, {r['plain_request_ratio']:.3f} plain requests"
        for r in result["runs"]))
