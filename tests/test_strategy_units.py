"""The decisions of the other strategies on crafted rewards, computed by hand, and `sla bench`'s summary
(the engine runs are in test_strategies_engine.py and test_strategies_server.py)."""

from __future__ import annotations

import math

import pytest

from sla_engine.search import CardsConfig, Chunk, ScoredTokens, SearchStats
from sla_engine.search.best_of_n import Candidate, survivors
from sla_engine.search.cards import acceptance, threshold
from sla_engine.search.fork_rollouts import fork_points, runner_up
from sla_engine.search.ranking import by_score, majority, ranked
from sla_engine.search.rsd import step_score
from sla_engine.search.tree_sampling import Path, hand_over, repeats, split, winner
from sla_pipeline.bench.run import StreamTiming, summarize


def sample(index, rewards, finish="stop"):
    return Candidate(list(range(len(rewards))), list(rewards), finish, index=index)


def best(samples: list[Candidate], prefer_finished: bool = False) -> Candidate:
    return ranked(samples, by_score("mean", prefer_finished))[0]


def test_best_of_n_keeps_the_best_fraction_by_prefix_mean_and_picks_the_best_mean():
    batch = [sample(0, [0.0, 1.0]), sample(1, [2.0, 2.0]), sample(2, [-1.0, 0.0]), sample(3, [1.0, 0.0]),
             sample(4, [3.0, -2.0])]  # means 0.5, 2.0, -0.5, 0.5, 0.5
    kept = survivors(batch, keep=0.5)  # ceil(2.5) = 3: sample 1, then the first two of the 0.5 ties
    assert [s.index for s in kept] == [0, 1, 3]
    assert [s.index for s in survivors(batch, keep=0.01)] == [1]  # at least one goes on
    assert best(batch).index == 1
    assert best([sample(0, [1.0]), sample(1, [1.0])]).index == 0  # ties: the first drawn
    assert best([sample(0, []), sample(1, [-5.0])]).index == 1  # no reward at all ranks last


def test_best_of_n_prefer_finished_ranks_an_eos_sample_above_any_cut_one():
    batch = [sample(0, [3.0], "length"), sample(1, [1.0]), sample(2, [2.0]), sample(3, [4.0], "length")]
    assert best(batch).index == 3  # by reward alone: a cut answer wins
    assert best(batch, True).index == 2  # the best of those that ended at EOS
    cut = [sample(0, [1.0], "length"), sample(1, [2.0], "length")]
    assert best(cut, True).index == 1  # none ended: the best cut one


def test_a_majority_vote_takes_the_best_ranked_sample_of_the_most_given_answer():
    order = ["a", "b", "c", "d", "e"]  # best first
    assert majority(order, [1.0, 2.0, 2.0, None, 3.0]) == "b"  # two give 2: the better ranked of them
    assert majority(order, [1.0, 2.0, None, 2.0, 1.0]) == "a"  # 1 and 2 tie: the best ranked of either
    assert majority(order, [None, None, 4.0, None, None]) == "c"  # answers without a number do not vote
    assert majority(order, [None] * 5) == "a"  # nobody votes: the top-ranked sample


def test_a_sample_finishes_at_eos_at_its_budget_or_at_the_context_end():
    s = Candidate(index=0)
    s.grow(Chunk([5, 6], [0.1, 0.2], None, [7], 3, 10, 0), budget=4)
    assert s.finish_reason is None and s.tokens == [5, 6]
    s.grow(Chunk([7, 8], [0.3, 0.4], None, [9], 3, 12, 0), budget=4)
    assert s.finish_reason == "length" and s.mean_reward == pytest.approx(0.25)
    eos = Candidate(index=1)
    eos.grow(Chunk([5, 2], [0.5], "stop", [], 2, 10, 0), budget=10)
    assert eos.finish_reason == "stop" and eos.mean_reward == 0.5


def test_cards_threshold_rises_linearly_and_acceptance_is_min_1_exp():
    config = CardsConfig(reward_start=-1.0, reward_end=1.0, beta=0.5)
    assert threshold(config, 0, 100) == -1.0
    assert threshold(config, 25, 100) == pytest.approx(-0.5)
    assert threshold(config, 400, 100) == 1.0  # capped at the end value
    assert acceptance(0.2, 0.0, 0.5) == 1.0  # above τ: always
    assert acceptance(-0.5, 0.0, 0.5) == pytest.approx(math.exp(-1.0))  # (r − τ)/β = −1
    assert acceptance(-10.0, 0.0, 0.5) == pytest.approx(math.exp(-20.0))


def path(index, rewards, finish="stop", entropy=0.0, budget=1):
    return Path(list(range(len(rewards))), list(rewards), finish, index, budget, [0], entropy)


def test_tree_budget_splits_and_spare_budget_goes_to_the_most_uncertain_paths_first():
    assert split(8, 2) == [4, 4] and split(5, 2) == [3, 2] and split(7, 3) == [3, 2, 2] and split(1, 4) == [1]
    live = [path(0, [0.0], None, entropy=0.5), path(1, [0.0], None, entropy=2.0), path(2, [0.0], None, entropy=1.0)]
    hand_over(4, live)  # by entropy: 1, 2, 0, then 1 again
    assert [p.budget for p in live] == [2, 3, 2]


def test_tree_winner_is_the_best_mean_and_a_repeating_path_only_when_all_repeat():
    finished = [path(0, [1.0, 1.0], "repetition"), path(1, [0.2, 0.4]), path(2, [0.5, 0.1], "length")]
    assert winner(finished).index == 1  # 0.3 beats 0.3 later, and the repeating 1.0 is out
    assert winner([path(0, [0.1], "repetition"), path(1, [0.9], "repetition")]).index == 1


def test_repetition_is_a_16_token_run_into_the_new_segment_that_occurred_before():
    run = list(range(100, 116))
    assert repeats([1, 2] + run + [3] + run[:10], start=19) is False  # only 10 tokens of it again
    assert repeats([1, 2] + run + [3] + run, start=19) is True
    assert repeats(run + run[:8], start=16) is False
    assert repeats([7] * 40, start=32) is True  # a loop of one token
    assert repeats(list(range(64)), start=32) is False


def test_a_path_stops_when_its_new_segment_repeats():
    p = Path(index=0, budget=1)
    loop = list(range(200, 216))
    p.grow(Chunk(loop, [0.0] * 16, None, [1], 17, 5, 0, entropy=1.0), budget=100)
    assert p.finish_reason is None and p.entropy == 1.0
    p.grow(Chunk(loop, [0.0] * 16, None, [1], 17, 21, 0, entropy=0.1), budget=100)
    assert p.finish_reason == "repetition" and p.starts == [0, 16]
    child = p.copy(1, 2, upto=16)
    assert child.tokens == loop and child.starts == [0] and child.budget == 2 and child.finish_reason is None


def test_rsd_scores_a_step_by_the_sigmoid_of_its_mean_reward():
    assert step_score(ScoredTokens(rewards=[0.0, 0.0])) == 0.5
    assert step_score(ScoredTokens(rewards=[1.0, 3.0])) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert step_score(ScoredTokens(rewards=[])) == 1.0
    # the paper's δ = 0.7 sits between
    assert step_score(ScoredTokens(rewards=[-2.0])) < 0.7 <= step_score(ScoredTokens(rewards=[1.0]))


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


def test_fork_points_are_runner_ups_at_chunk_boundaries_spread_evenly():
    ups = [100 + i for i in range(60)]  # every position has a runner-up
    assert fork_points(ups, chunk=10, last=480, most=8) == [(10, 110), (20, 120), (30, 130), (40, 140), (50, 150)]
    assert [at for at, _ in fork_points(ups[:50], 10, 480, 8)] == [10, 20, 30, 40]  # not at the answer's last token
    assert [at for at, _ in fork_points(ups, 10, 39, 8)] == [10, 20, 30]  # at most `last` tokens in
    assert [at for at, _ in fork_points(ups, 10, 480, 2)] == [10, 30]  # 5 eligible, step 2.5: the 1st and 3rd
    assert [at for at, _ in fork_points(ups, 10, 480, 3)] == [10, 20, 40]  # step 5/3: indices 0, 1, 3
    gaps = [None if i in (20, 30) else u for i, u in enumerate(ups)]  # no plausible runner-up there
    assert [at for at, _ in fork_points(gaps, 10, 480, 8)] == [10, 40, 50]
    assert fork_points(ups[:10], 10, 480, 4) == []  # shorter than a chunk and a token: nothing to fork


def test_the_runner_up_is_the_best_rival_other_than_the_token_written():
    assert runner_up(5, (5, 9)) == 9
    assert runner_up(5, (9, 5)) == 9  # a tie the sampler broke the other way
    assert runner_up(5, (5,)) is None  # the min_p filter left no rival
