"""`sla bench`: its summary over streams, and every strategy against greedy on one engine."""

from __future__ import annotations

import pytest

from sla_engine.search import SearchStats
from sla_pipeline.bench import run as bench
from sla_pipeline.bench.run import BenchPlan, StreamTiming, summarize
from sla_pipeline.eval.generation import Strategy


def test_bench_sums_counts_and_averages_ratios_over_streams():
    streams = [(StreamTiming(ttft_s=1.0, e2e_s=10.0, rate=10.0),
                SearchStats(tokens_generated=300, tokens_emitted=100, branch_prompt_tokens=200,
                            branch_cached_tokens=150,
                            peak_live_branches=2, counters={"steps_target": 1, "target_share": 0.5,
                                                            "compute_vs_target": None})),
               (StreamTiming(ttft_s=3.0, e2e_s=30.0, rate=None),
                SearchStats(tokens_generated=100, tokens_emitted=50, branch_prompt_tokens=100, branch_cached_tokens=0,
                            peak_live_branches=4, counters={"steps_target": 3, "target_share": 1.0,
                                                            "compute_vs_target": 2.0}))]
    row = summarize(streams)
    assert row["counters"] == {"steps_target": 4, "target_share": 0.75, "compute_vs_target": 2.0}
    assert row["ttft_s"] == 2.0 and row["s_per_emitted_token"] == pytest.approx((0.1 + 0.6) / 2)
    assert row["committed_tok_s_per_stream"] == 10.0  # a stream that came in one piece has no rate
    assert row["generated_per_emitted"] == pytest.approx(400 / 150)
    assert row["prefix_cache_hit_rate"] == 0.5 and row["peak_live_branches_per_stream"] == 4


@pytest.mark.engine
def test_bench_measures_every_strategy_against_greedy_on_the_same_engine(tiny_search, target):
    runner = tiny_search[0]
    strategies = tuple(Strategy(n, s) for n, s in (
        ("sla", {"strategy": "sla", "width": 2, "chunk": 3, "depth": 1}),
        ("best_of_n", {"strategy": "best_of_n", "n": 3, "prune_at": 0}),
        ("cards", {"strategy": "cards", "max_segment": 4, "max_rejections": 2}),
        ("tree", {"strategy": "tree", "segment": 4, "paths": 3}),
        ("rsd", {"strategy": "rsd", "max_step": 4})))
    result = runner.run(bench.run(runner.engine, target, BenchPlan(strategies, (1, 2), max_tokens=8)))
    assert runner.engine.num_unfinished_requests() == 0 and target.num_unfinished_requests() == 0
    assert [r["concurrency"] for r in result["runs"]] == [1, 2]
    for run_ in result["runs"]:
        rows = run_["strategies"]
        assert list(rows) == ["greedy", "sla", "best_of_n", "cards", "tree", "rsd"]
        greedy_row = rows["greedy"]
        assert greedy_row["generated_per_emitted"] == 1 and greedy_row["vs_greedy"]["s_per_emitted_token"] == 1
        assert greedy_row["streams"] == run_["concurrency"]
        assert 0 < greedy_row["tokens_emitted"] <= 8 * run_["concurrency"]
        for name in ("sla", "best_of_n", "tree"):  # they generate more than they emit
            assert rows[name]["generated_per_emitted"] > 1.5, name
        for name in ("sla", "best_of_n", "cards", "tree", "rsd"):
            assert rows[name]["prefix_cache_hit_rate"] is not None, name
        assert rows["best_of_n"]["counters"]["samples"] == 3 * run_["concurrency"]
        c = rows["rsd"]["counters"]
        assert c["draft_tokens"] + c["target_tokens"] > 0
        assert c["steps_draft"] + c["steps_target"] >= run_["concurrency"]
        for row in rows.values():
            assert row["ttft_s"] > 0 and row["tokens_emitted"] > 0
            assert row["vs_greedy"]["s_per_emitted_token"] == pytest.approx(
                row["s_per_emitted_token"] / greedy_row["s_per_emitted_token"])
        sla = rows["sla"]  # SLA's rows say how far it is from what the hardware allows, from this run
        # a ratio of two timings: its size depends on the machine's load, so only its presence is asserted
        assert sla["limit_ratio"] == result["limit_ratio"]["4"] and sla["limit_ratio"] > 0
        assert sla["ttft_ratio"] == sla["vs_greedy"]["ttft"] and "limit_ratio" not in rows["cards"]
        assert sla["ratio_committed_tok_s"] is None or sla["ratio_committed_tok_s"] > 0
    table = bench.table(result)
    assert len(table.splitlines()) == 2 + 2 * 6 and "| 2 | rsd |" in table
