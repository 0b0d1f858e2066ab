"""Decode speed with vs without the reward channel, same model and engine settings, in one run.

    python loadtest/reward_overhead.py [--model qwen2.5-0.5b-instruct] [--batches 1 8] [--tokens 64]

The reward engine gets a head with random weights (speed does not depend on them) of the paper's width
(256) and reads the reward of every token, as search strategies do. Prints JSON with per-batch tokens/s
for both engines and `ratio` = reward / plain (1.0 = no overhead; the target is ≥ 0.97).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import torch

from sla_engine.engine import Engine, EngineConfig
from sla_engine.reward import ChannelConfig, RewardChannel, RewardHead
from sla_engine.reward.weights import model_dims
from sla_engine.store import ModelStore

sys.path.insert(0, str(Path(__file__).parent))
from decode_speed import run_batch  # noqa: E402


async def measure(config: EngineConfig, batches: list[int], tokens: int) -> list[dict]:
    engine = await Engine.start(config)
    try:
        prompt = engine.chat_prompt_ids([{"role": "user", "content": "Write a short story about a lighthouse."}])
        await run_batch(engine, prompt, max(batches), 8)  # one more warm-up at the largest batch
        return [await run_batch(engine, prompt, b, tokens) for b in batches]
    finally:
        engine.shutdown()


async def main(args: argparse.Namespace) -> dict:
    model = ModelStore().resolve(args.model)
    hidden, layers = model_dims(model.path)
    torch.manual_seed(0)
    head_dir = Path(tempfile.mkdtemp(prefix="sla-head-"))
    RewardHead.from_channel(RewardChannel(ChannelConfig(hidden, layers, width=256)), model.name, model.path).save(head_dir)
    base = dict(model_path=str(model.path), served_name=model.name, max_num_seqs=max(args.batches))
    plain = await measure(EngineConfig(**base), args.batches, args.tokens)
    reward = await measure(EngineConfig(**base, reward_head=str(head_dir)), args.batches, args.tokens)
    rows = [{"batch": p["batch"], "plain_tok_s": p["tok_s"], "reward_tok_s": r["tok_s"],
             "ratio": r["tok_s"] / p["tok_s"]} for p, r in zip(plain, reward)]
    return {"model": model.name, "tokens": args.tokens, "runs": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tokens", type=int, default=64)
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result, indent=2))
    print("reward/plain decode tok/s: " + ", ".join(f"batch {r['batch']}: {r['ratio']:.3f}" for r in result["runs"]))
