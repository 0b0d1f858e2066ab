"""best_of_n, cards, tree and rsd on a real engine with tiny models: each decision checked against the
transformers fp32 reference (tests/sla_reference.py) computing rewards and entropies by hand, stats that add
up, and no request left in the engine after a search is closed early."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import pytest
from vllm import SamplingParams

from sla_engine.engine import Engine, EngineConfig
from sla_engine.search import BestOfNConfig, CardsConfig, RsdConfig, TreeConfig
from sla_engine.search.best_of_n import BestOfN, Candidate
from sla_engine.search.cards import Cards
from sla_engine.search.rsd import Rsd
from sla_engine.search.tree_sampling import TreeSampling
from sla_pipeline.bench import run as bench
from sla_pipeline.bench.run import BenchPlan
from sla_pipeline.eval.generation import Strategy
from tests.engine_thread import PROMPT, run
from tests.tiny_models import make_tiny_model

pytestmark = pytest.mark.engine

TOL = 1e-3


def mean(xs):
    return sum(xs) / len(xs)


def test_best_of_n_answers_with_the_sample_the_reference_scores_best(tiny_search):
    runner, ref, _ = tiny_search
    search = BestOfN(runner.engine, PROMPT, BestOfNConfig(n=4, temperature=1.0, prune_at=0), 12, seed=7)
    [commit] = run(runner, search)
    assert len({tuple(s.tokens) for s in search.samples}) == 4  # four different samples
    means = []
    for s in search.samples:
        expected = ref.rewards(PROMPT, s.tokens)[: len(s.rewards)]
        assert s.rewards == pytest.approx(expected, abs=TOL)
        means.append(mean(expected))
    assert commit.tokens == search.samples[means.index(max(means))].tokens
    stats = search.stats
    assert stats.counters["samples"] == 4 and stats.tokens_emitted == len(commit.tokens)
    assert stats.tokens_generated == sum(len(s.tokens) + 1 for s in search.samples)  # + each look-ahead token


def test_best_of_n_picks_by_the_read_out(tiny_search):
    """`score: "last"` picks the sample whose last token's reward is highest, where the mean picks another."""
    runner, ref, _ = tiny_search
    for seed in range(20):
        search = BestOfN(runner.engine, PROMPT, BestOfNConfig(n=4, temperature=1.0, prune_at=0, score="last"), 12,
                         seed=seed)
        [commit] = run(runner, search)
        last = [ref.rewards(PROMPT, s.tokens)[len(s.rewards) - 1] for s in search.samples]
        means = [mean(ref.rewards(PROMPT, s.tokens)[: len(s.rewards)]) for s in search.samples]
        if last.index(max(last)) != means.index(max(means)):
            break
    else:
        pytest.fail("no seed made the two read-outs pick different samples")
    assert commit.tokens == search.samples[last.index(max(last))].tokens
    assert search.stats.settings["score"] == "last"


def test_best_of_n_can_answer_with_the_samples_majority(tiny_search):
    """`select: "vote"` reads each sample's final number from its decoded text (the real tokenizer) and answers
    with the best-scored sample among the most common number; "score" answers with the best-scored sample."""
    runner = tiny_search[0]
    tokenizer = runner.engine.tokenizer
    texts = ["So the answer is 7.", "The answer is 12.", "Thus 5 + 7 = 12.", "I am not sure.", "#### 12"]
    rewards = [3.0, 1.0, 2.0, 4.0, 0.5]

    def samples():
        return [Candidate(tokenizer.encode(t, add_special_tokens=False), [r], "stop", index=i)
                for i, (t, r) in enumerate(zip(texts, rewards))]

    voting = BestOfN(runner.engine, PROMPT, BestOfNConfig(n=5, prune_at=0, select="vote"), 12)
    scoring = BestOfN(runner.engine, PROMPT, BestOfNConfig(n=5, prune_at=0), 12)
    assert voting._choose(samples()).index == 2  # three say 12; of them the best reward (2.0)
    assert scoring._choose(samples()).index == 3  # the best reward, a sample with no answer at all
    assert voting.stats.settings["select"] == "vote"


def test_best_of_n_samples_only_from_the_top_k_tokens(tiny_search):
    runner, ref, _ = tiny_search
    search = BestOfN(runner.engine, PROMPT, BestOfNConfig(n=3, temperature=2.0, top_k=1, prune_at=0), 12, seed=5)
    run(runner, search)
    greedy = ref.chunk(PROMPT, [], None, 12)
    for s in search.samples:  # top-1 at any temperature is the argmax (a sample stops early only at EOS)
        assert s.tokens and s.tokens == greedy[: len(s.tokens)]


def test_best_of_n_greedy_first_draws_the_greedy_answer_then_the_samples_it_would_have_drawn(tiny_search):
    runner, ref, _ = tiny_search
    config = BestOfNConfig(n=3, temperature=2.0, prune_at=0)
    plain = BestOfN(runner.engine, PROMPT, config, 12, seed=9)
    first = BestOfN(runner.engine, PROMPT, replace(config, greedy_first=True), 12, seed=9)
    run(runner, plain), run(runner, first)
    greedy = ref.chunk(PROMPT, [], None, 12)
    assert first.samples[0].tokens == greedy[: len(first.samples[0].tokens)]
    assert [s.tokens for s in first.samples[1:]] == [s.tokens for s in plain.samples[:2]]  # same seeds, in order
    assert all(s.tokens != first.samples[0].tokens for s in first.samples[1:])


def test_best_of_n_prunes_to_the_best_prefixes_and_continues_them(tiny_search):
    runner, ref, _ = tiny_search
    search = BestOfN(runner.engine, PROMPT, BestOfNConfig(n=4, temperature=1.0, prune_at=4, keep=0.5), 12, seed=3)
    [commit] = run(runner, search)
    prefix = [mean(ref.rewards(PROMPT, s.tokens[:4])) for s in search.samples]
    top2 = sorted(range(4), key=lambda i: -prefix[i])[:2]
    grown = [i for i, s in enumerate(search.samples) if len(s.tokens) > 4]
    assert sorted(grown) == sorted(top2)  # only the two best prefixes went on, to max_tokens
    assert all(len(search.samples[i].tokens) == 12 for i in grown)
    assert search.stats.counters["samples_pruned"] == 2 and search.stats.branches_aborted == 2
    finals = {i: mean(ref.rewards(PROMPT, search.samples[i].tokens)) for i in grown}
    assert commit.tokens == search.samples[max(finals, key=finals.get)].tokens


def test_best_of_n_stops_drawing_once_the_threshold_is_reached(tiny_search):
    runner, _, _ = tiny_search
    low = BestOfN(runner.engine, PROMPT, BestOfNConfig(n=4, batch=1, prune_at=0, threshold=-1e6), 6, seed=1)
    high = BestOfN(runner.engine, PROMPT, BestOfNConfig(n=4, batch=1, prune_at=0, threshold=1e6), 6, seed=1)
    run(runner, low), run(runner, high)
    assert low.stats.counters["samples"] == 1 and high.stats.counters["samples"] == 4
    assert high.stats.peak_live_branches == 1  # one at a time


def test_cards_cuts_segments_where_the_reference_entropy_crosses_the_threshold(tiny_search):
    runner, ref, _ = tiny_search
    probe = Cards(runner.engine, PROMPT, CardsConfig(entropy=20.0, min_segment=1, max_segment=24), 24, seed=5)
    [whole] = run(runner, probe)  # no cut below 20 nats: one segment of 24
    entropies = sorted(ref.entropies(PROMPT + whole.tokens)[len(PROMPT) - 1 :])
    middle = len(entropies) // 2
    h = (entropies[middle - 1] + entropies[middle]) / 2  # half the positions above: cuts will happen
    config = CardsConfig(entropy=h, min_segment=2, max_segment=8, reward_start=-1e6, reward_end=-1e6)
    search = Cards(runner.engine, PROMPT, config, 24, seed=5)
    commits = run(runner, search)
    answer = [t for c in commits for t in c.tokens]
    ent = ref.entropies(PROMPT + answer)  # ent[p]: entropy of the token after position p
    at = len(PROMPT)
    for c in commits:
        n = len(c.tokens)
        assert 2 <= n <= 8
        # no cut inside: the positions from the 3rd token on were drawn below h
        assert all(ent[at + j - 1] < h for j in range(2, n))
        if c.finish_reason is None and n < 8:
            assert ent[at + n - 1] >= h  # the next token would have been drawn at or above h
        at += n
    assert len(commits) >= 3 and all(t.accepted for t in search.trials)  # τ far below: every draw accepts
    assert search.stats.counters["segments_accepted"] == len(commits)


def test_cards_takes_the_best_of_the_rejected_segments_after_the_cap(tiny_search):
    runner, ref, _ = tiny_search
    config = CardsConfig(entropy=20.0, min_segment=4, max_segment=4, reward_start=1e6, reward_end=1e6,
                         max_rejections=3, top_k=1000, beta=1.0)
    search = Cards(runner.engine, PROMPT, config, 8, seed=9)
    commits = run(runner, search)
    assert len(commits) == 2 and len(search.trials) == 6 and not any(t.accepted for t in search.trials)
    answer = []
    for c, trials in zip(commits, (search.trials[:3], search.trials[3:])):
        scores = [mean(ref.rewards(PROMPT, answer + t.segment.tokens)) for t in trials]
        assert [t.reward for t in trials] == pytest.approx(scores, abs=TOL)
        assert c.tokens == trials[scores.index(max(scores))].segment.tokens
        answer += c.tokens
    c = search.stats.counters
    assert c["segments_rejected"] == 6 and c["segments_forced"] == 2 and search.stats.branches_forked == 5
    # the 5 requests after the first: 2 retries on the prompt (70 tokens), 3 tries on prompt + 4 (74); each
    # finds the prompt's 2 full KV blocks (32 tokens each) in the prefix cache
    assert search.stats.branch_prompt_tokens == 2 * 70 + 3 * 74 and search.stats.branch_cached_tokens == 5 * 64


def test_tree_grows_a_budget_shaped_tree_and_returns_the_best_path(tiny_search):
    runner, ref, _ = tiny_search
    search = TreeSampling(runner.engine, PROMPT, TreeConfig(segment=4, width=2, paths=4, temperature=1.0), 12, seed=4)
    [commit] = run(runner, search)
    paths = search.finished
    assert len(paths) == 4 and all(len(p.tokens) == 12 and p.finish_reason == "length" for p in paths)
    assert len({tuple(p.tokens[:4]) for p in paths}) == 1  # the first segment is shared
    assert len({tuple(p.tokens[:8]) for p in paths}) == 2  # one fork after it, into two
    assert len({tuple(p.tokens) for p in paths}) == 4  # and each of those forked again
    means = [mean(ref.rewards(PROMPT, p.tokens)) for p in paths]
    assert [p.mean_reward for p in paths] == pytest.approx(means, abs=TOL)
    assert commit.tokens == paths[means.index(max(means))].tokens
    assert search.stats.branches_forked == 3 and search.stats.counters["paths_finished"] == 4
    assert search.stats.tokens_generated == (1 + 2 + 4) * 5  # 4-token segments, each with its look-ahead


def test_closing_any_search_early_aborts_its_requests(tiny_search):
    runner, _, _ = tiny_search
    configs = [
        (BestOfN, BestOfNConfig(n=6, prune_at=0)), (Cards, CardsConfig(max_segment=64, entropy=20.0)),
        (TreeSampling, TreeConfig(segment=8, paths=6)),
    ]

    async def go():
        searches = [cls(runner.engine, PROMPT + [i], config, 400, seed=i) for i, (cls, config) in enumerate(configs)]
        gens = [s.commits() for s in searches]
        tasks = [asyncio.ensure_future(g.__anext__()) for g in gens]
        # close while every search is mid-piece with requests in the engine (not on a fixed sleep: on a
        # loaded machine a search could still be unstarted, or already have handed out its first commit)
        for _ in range(3000):
            await asyncio.sleep(0.01)
            started = all(s.branches.running for s in searches) and not any(t.done() for t in tasks)
            if started and runner.engine.num_unfinished_requests() >= len(searches):
                break
        assert not any(t.done() for t in tasks), "a search committed before it could be closed"
        running = runner.engine.num_unfinished_requests()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for g in gens:
            await g.aclose()
        return running, searches

    running, searches = runner.run(go())
    assert running >= 3
    assert runner.engine.num_unfinished_requests() == 0
    runner.run(asyncio.sleep(0.5))
    assert runner.engine.scheduler_counts.running == 0 and runner.engine.scheduler_counts.waiting == 0
    assert all(s.stats.branches_aborted >= 1 for s in searches)


@pytest.fixture(scope="module")
def target(tiny_search, tmp_path_factory):
    """A second tiny model with the same tokenizer and other weights, the `rsd` target: a second engine on
    the draft's event loop, as the server runs the two."""
    runner = tiny_search[0]
    folder = make_tiny_model("llama", tmp_path_factory.mktemp("tiny-target"), seed=2)
    engine = runner.run(Engine.start(EngineConfig(model_path=str(folder), served_name="target", max_model_len=1024,
                                                  kv_cache_gib=0.5, warmup=False)))
    yield engine
    engine.shutdown()


def greedy(runner, engine, prompt, n):
    async def go():
        async for out in engine.generate(prompt, SamplingParams(max_tokens=n, temperature=0.0)):
            pass
        return list(out.outputs[0].token_ids)

    return runner.run(go())


def rsd(tiny_search, target, threshold, max_tokens=12):
    runner = tiny_search[0]
    search = Rsd(runner.engine, target, PROMPT, RsdConfig(threshold=threshold, max_step=4), max_tokens)
    commits = run(runner, search)
    assert target.num_unfinished_requests() == 0
    return search, commits


def test_rsd_threshold_0_is_the_draft_and_1_is_the_target_token_for_token(tiny_search, target):
    runner = tiny_search[0]
    draft_only, commits = rsd(tiny_search, target, 0.0)
    assert [t for c in commits for t in c.tokens] == greedy(runner, runner.engine, PROMPT, 12)
    c = draft_only.stats.counters
    assert (c["steps_draft"], c["steps_target"], c["target_share"]) == (3, 0, 0.0)
    assert draft_only.stats.branch_prompt_tokens == 74 + 78  # the draft steps after the first
    assert draft_only.stats.branch_cached_tokens == 2 * 64
    target_only, commits = rsd(tiny_search, target, 1.0)
    assert [t for c in commits for t in c.tokens] == greedy(runner, target, PROMPT, 12)
    c = target_only.stats.counters
    assert (c["steps_draft"], c["steps_target"], c["target_share"]) == (0, 3, 1.0)
    assert target_only.stats.branch_prompt_tokens == (74 + 78) + (70 + 74 + 78)  # later drafts + every rewrite
    for search in (draft_only, target_only):
        c = search.stats.counters
        assert c["draft_tokens"] + c["target_tokens"] == search.stats.tokens_generated
        assert search.stats.tokens_emitted == 12
    assert draft_only.stats.counters["compute_vs_target"] == pytest.approx(15 / 12)  # same sizes: 3 × (4 + 1)


def test_rsd_accepts_exactly_the_steps_whose_reference_score_passes(tiny_search, target):
    runner, ref, _ = tiny_search
    search, commits = rsd(tiny_search, target, 0.5)
    prefix = []
    for (step, score, writer), commit in zip(search.steps, commits):
        expected = ref.chunk(PROMPT, prefix, None, 4)[len(prefix):]
        assert step == expected  # the draft's greedy step from the committed prefix
        by_hand = 1 / (1 + math.exp(-mean(ref.rewards(PROMPT, prefix + step)[len(prefix):])))
        assert score == pytest.approx(by_hand, abs=TOL)
        assert writer == ("draft" if by_hand >= 0.5 else "target") and (commit.tokens == step) == (writer == "draft")
        prefix += commit.tokens
    c = search.stats.counters
    assert c["steps_draft"] + c["steps_target"] == len(commits) == 3


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
        assert sla["limit_ratio"] == result["limit_ratio"]["4"] and 0 < sla["limit_ratio"] <= 2
        assert sla["ttft_ratio"] == sla["vs_greedy"]["ttft"] and "limit_ratio" not in rows["cards"]
        assert sla["ratio_committed_tok_s"] is None or sla["ratio_committed_tok_s"] > 0
    table = bench.table(result)
    assert len(table.splitlines()) == 2 + 2 * 6 and "| 2 | rsd |" in table
