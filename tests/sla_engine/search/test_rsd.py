"""Reward-guided speculative decoding on crafted rewards, and on two real engines with tiny models."""

from __future__ import annotations

import math

import pytest

from sla_engine.search import RsdConfig, ScoredTokens
from sla_engine.search.rsd import Rsd, step_score
from tests.helpers.engine_thread import PROMPT, run
from tests.helpers.search import TOL, greedy, mean


def test_rsd_scores_a_step_by_the_sigmoid_of_its_mean_reward():
    assert step_score(ScoredTokens(rewards=[0.0, 0.0])) == 0.5
    assert step_score(ScoredTokens(rewards=[1.0, 3.0])) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert step_score(ScoredTokens(rewards=[])) == 1.0
    # the paper's δ = 0.7 sits between
    assert step_score(ScoredTokens(rewards=[-2.0])) < 0.7 <= step_score(ScoredTokens(rewards=[1.0]))


def rsd(tiny_search, target, threshold, max_tokens=12):
    runner = tiny_search[0]
    search = Rsd(runner.engine, target, PROMPT, RsdConfig(threshold=threshold, max_step=4), max_tokens)
    commits = run(runner, search)
    assert target.num_unfinished_requests() == 0
    return search, commits


@pytest.mark.engine
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


@pytest.mark.engine
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
