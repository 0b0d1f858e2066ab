"""Engine start-up time and greedy decode speed at several batch sizes, for one model and dtype.

    python -m sla_pipeline.bench.decode_speed --model qwen2.5-coder-0.5b-instruct --dtype float32 [--batches 1 8 32]

Prints one JSON object: ready_s (engine start incl. warm-up), and per batch size the mean time per
decode step and the total output tokens/s. Used to choose the stored dtype and the CPU engine defaults
(docs/measurements.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from vllm import SamplingParams

from sla_engine.engine import Engine, EngineConfig
from sla_engine.store import ModelStore


async def run_batch(engine: Engine, prompt_ids: list[int], batch: int, tokens: int, read_rewards: bool = True) -> dict:
    """`batch` greedy streams of `tokens` tokens at once; on a reward engine they read the reward out unless
    `read_rewards` is False (plain decoding)."""
    params = SamplingParams(max_tokens=tokens, temperature=0.0, ignore_eos=True, detokenize=False)

    async def one(i: int) -> int:
        n = 0
        async for out in engine.generate(prompt_ids, params, f"bench-{batch}-{i}-{read_rewards}", read_rewards):
            n = len(out.outputs[0].token_ids)
        return n

    t0 = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(batch)))
    wall = time.perf_counter() - t0
    return {"batch": batch, "ms_per_step": 1000 * wall / tokens, "tok_s": sum(counts) / wall}


async def main(args: argparse.Namespace) -> dict:
    model = ModelStore().resolve(args.model)
    t0 = time.perf_counter()
    engine = await Engine.start(EngineConfig(
        model_path=str(model.path), served_name=model.name, dtype=args.dtype,
        enforce_eager=not args.compiled, max_num_seqs=max(args.batches),
    ))
    ready = time.perf_counter() - t0
    prompt = engine.chat_prompt_ids([{"role": "user", "content": "Write a short story about a lighthouse."}])
    try:
        results = [await run_batch(engine, prompt, b, args.tokens) for b in args.batches]
    finally:
        engine.shutdown()
    return {"model": model.name, "dtype": args.dtype, "compiled": args.compiled, "ready_s": ready,
            "tokens": args.tokens, "runs": results}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--compiled", action="store_true", help="torch.compile the model (default: eager)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tokens", type=int, default=64)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
