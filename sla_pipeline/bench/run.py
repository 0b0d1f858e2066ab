"""`sla bench`: what each strategy costs against greedy decoding, on the same engine(s), in the same run.

For each concurrency c, c streams (different prompts) run at once, one strategy after the other, greedy
first. Per strategy: time to the first committed token, time per emitted token (end-to-end seconds over
tokens emitted, per stream), committed tokens/s per stream after the first commit, tokens generated per
token emitted, the share of branch prompt tokens served from the prefix cache, the strategy's own counters
(counts summed over streams, ratios such as RSD's target_share averaged), and its ratios to greedy at the
same concurrency. For SLA rows also `limit_ratio`: greedy's time per decode step at batch 1 over batch
width^(depth+1), measured on the same engine in the same run — SLA keeps that many leaves busy to commit one
token per step, so it is the best `ratio_committed_tok_s` (SLA's committed tokens/s per stream over
greedy's) any SLA implementation can reach on this hardware; `ttft_ratio` is SLA's time to first token
over greedy's. Quality is `sla eval`'s job: speed does not depend on what a head has learnt, so a
random channel of width 256 serves when no head is given (then reward thresholds act on random rewards:
the decisions, not the costs, are meaningless).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from vllm import SamplingParams

from sla_engine.engine import Engine
from sla_engine.search import SearchStats
from sla_engine.search.choose import make_config
from sla_engine.search.config import PlainConfig, SlaConfig
from sla_engine.search.rsd import step_end_ids
from sla_engine.search.strategies import make_search
from sla_pipeline.bench.decode_speed import run_batch
from sla_pipeline.eval.generation import Strategy

PROMPTS = (
    "Explain how a refrigerator works, step by step.",
    "Write a Python function that merges two sorted lists, and explain it.",
    "Describe the water cycle to a ten-year-old.",
    "What are the trade-offs between TCP and UDP?",
    "Write a short story about a lighthouse keeper.",
    "How does binary search work? Give an example.",
    "List the main causes of the French Revolution and explain each.",
    "Explain what a hash table is and when to use one.",
)


@dataclass(frozen=True)
class BenchPlan:
    strategies: tuple[Strategy, ...]  # greedy is measured first in any case, as the baseline
    concurrency: tuple[int, ...] = (1, 4)
    max_tokens: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.concurrency or min(self.concurrency) < 1:
            raise ValueError(f"concurrency must be positive integers, got {self.concurrency}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {self.max_tokens}")
        for s in self.strategies:
            make_config(s.search)  # a bad setting fails before any engine starts


@dataclass
class StreamTiming:
    ttft_s: float
    e2e_s: float
    rate: float | None  # committed tokens/s after the first commit (None: everything came at once)


async def greedy_stream(engine: Engine, prompt: list[int], max_tokens: int, request_id: str) -> tuple[StreamTiming,
                                                                                                      SearchStats]:
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, detokenize=False)
    t0, first, first_n, n = time.perf_counter(), None, 0, 0
    async for out in engine.generate(prompt, params, request_id, read_rewards=False):  # as the server decodes plainly
        n = len(out.outputs[0].token_ids)
        if first is None and n:
            first, first_n = time.perf_counter(), n
    return _stream(t0, first, first_n, n), SearchStats(tokens_generated=n, tokens_emitted=n)


async def search_stream(engine: Engine, target: Engine | None, prompt: list[int], search: dict, max_tokens: int,
                        request_id: str, seed: int) -> tuple[StreamTiming, SearchStats]:
    config = make_config(search)
    stats = SearchStats(settings=config.as_dict())
    t0, first, first_n, n = time.perf_counter(), None, 0, 0
    async for commit in make_search(config, engine, prompt, max_tokens, stats, request_id, seed, target).commits():
        n += len(commit.tokens)
        if first is None and commit.tokens:
            first, first_n = time.perf_counter(), n
    return _stream(t0, first, first_n, n), stats


def _stream(t0: float, first: float | None, first_n: int, n: int) -> StreamTiming:
    end = time.perf_counter()
    first = first or end
    rate = (n - first_n) / (end - first) if n > first_n and end > first else None
    return StreamTiming(first - t0, end - t0, rate)


def summarize(runs: list[tuple[StreamTiming, SearchStats]]) -> dict:
    streams, stats = [r[0] for r in runs], [r[1] for r in runs]
    emitted = sum(s.tokens_emitted for s in stats)
    prompt_tokens = sum(s.branch_prompt_tokens for s in stats)
    rates = [s.rate for s in streams if s.rate]
    counters: dict[str, float] = {}  # counts (ints) summed over the streams, ratios (floats) averaged
    for name in {k for s in stats for k in s.counters}:
        values = [v for s in stats if isinstance(v := s.counters.get(name), (int, float)) and not isinstance(v, bool)]
        if values:
            counters[name] = statistics.mean(values) if any(isinstance(v, float) for v in values) else sum(values)
    return {
        "streams": len(streams),
        "ttft_s": statistics.mean(s.ttft_s for s in streams),
        "e2e_s": statistics.mean(s.e2e_s for s in streams),
        "s_per_emitted_token": statistics.mean(r.e2e_s / s.tokens_emitted for r, s in runs if s.tokens_emitted),
        "committed_tok_s_per_stream": statistics.mean(rates) if rates else None,
        "tokens_emitted": emitted,
        "generated_per_emitted": sum(s.tokens_generated for s in stats) / emitted if emitted else None,
        "prefix_cache_hit_rate": sum(s.branch_cached_tokens for s in stats) / prompt_tokens if prompt_tokens else None,
        "peak_live_branches_per_stream": max(s.peak_live_branches for s in stats),
        "counters": counters,
    }


async def run_concurrency(engine: Engine, target: Engine | None, prompts: list[list[int]], c: int,
                          plan: BenchPlan, limits: dict[int, float]) -> dict:
    chosen = [prompts[i % len(prompts)] for i in range(c)]
    rows = {}
    greedy = await asyncio.gather(*(greedy_stream(engine, p, plan.max_tokens, f"bench-greedy-{c}-{i}")
                                    for i, p in enumerate(chosen)))
    rows["greedy"] = summarize(greedy)
    for s in plan.strategies:
        if isinstance(make_config(s.search), PlainConfig):
            continue
        runs = await asyncio.gather(*(
            search_stream(engine, target, p, s.search, plan.max_tokens, f"bench-{s.name}-{c}-{i}", plan.seed + i)
            for i, p in enumerate(chosen)))
        rows[s.name] = summarize(runs)
    base = rows["greedy"]
    for row in rows.values():
        row["vs_greedy"] = {
            "ttft": row["ttft_s"] / base["ttft_s"],
            "s_per_emitted_token": row["s_per_emitted_token"] / base["s_per_emitted_token"],
        }
    for s in plan.strategies:
        if isinstance(config := make_config(s.search), SlaConfig):
            row, rate = rows[s.name], base["committed_tok_s_per_stream"]
            row["ratio_committed_tok_s"] = row["committed_tok_s_per_stream"] / rate if rate and row[
                "committed_tok_s_per_stream"] else None
            row["ttft_ratio"] = row["vs_greedy"]["ttft"]
            row["limit_ratio"] = limits[config.max_live_branches]
    return {"concurrency": c, "strategies": rows}


async def step_limits(engine: Engine, prompt: list[int], leaves: set[int], tokens: int = 48) -> dict[int, float]:
    """Per leaf count n, greedy's time per decode step at batch 1 over batch n (plain requests, same engine)."""
    one = (await run_batch(engine, prompt, 1, tokens))["ms_per_step"]
    return {n: one / (await run_batch(engine, prompt, n, tokens))["ms_per_step"] for n in sorted(leaves)}


async def run(engine: Engine, target: Engine | None, plan: BenchPlan) -> dict:
    prompts = [engine.chat_prompt_ids([{"role": "user", "content": p}]) for p in PROMPTS]
    if target:
        await asyncio.to_thread(step_end_ids, engine)  # as the server does at start-up: not inside a timing
    leaves = {c.max_live_branches for s in plan.strategies if isinstance(c := make_config(s.search), SlaConfig)}
    limits = await step_limits(engine, prompts[0], leaves) if leaves else {}
    runs = [await run_concurrency(engine, target, prompts, c, plan, limits) for c in plan.concurrency]
    return {"model": engine.config.served_name, "target_model": target.config.served_name if target else None,
            "max_tokens": plan.max_tokens, "strategies": {s.name: s.search for s in plan.strategies},
            "limit_ratio": {str(n): r for n, r in limits.items()}, "runs": runs}


def table(result: dict) -> str:
    """Markdown: one row per (concurrency, strategy)."""
    lines = ["| c | strategy | TTFT s | s / emitted token | × greedy | generated / emitted | cache hit | "
             "committed tok/s × greedy (limit) |", "|---|---|---|---|---|---|---|---|"]

    def num(x, fmt: str = ".2f") -> str:
        return "-" if x is None else format(x, fmt)

    for run in result["runs"]:
        for name, row in run["strategies"].items():
            limit = f"{num(row['ratio_committed_tok_s'])} ({num(row['limit_ratio'])})" if "limit_ratio" in row else ""
            lines.append(f"| {run['concurrency']} | {name} | {row['ttft_s']:.2f} | {row['s_per_emitted_token']:.3f} | "
                         f"{row['vs_greedy']['s_per_emitted_token']:.2f} | {num(row['generated_per_emitted'])} | "
                         f"{num(row['prefix_cache_hit_rate'])} | {limit} |")
    return "\n".join(lines)
