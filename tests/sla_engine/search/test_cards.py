"""CARDS on crafted rewards, and on a real engine with tiny models."""

from __future__ import annotations

import math

import pytest

from sla_engine.search import CardsConfig
from sla_engine.search.cards import Cards, acceptance, threshold
from tests.helpers.engine_thread import PROMPT, run
from tests.helpers.search import TOL, mean


def test_cards_threshold_rises_linearly_and_acceptance_is_min_1_exp():
    config = CardsConfig(reward_start=-1.0, reward_end=1.0, beta=0.5)
    assert threshold(config, 0, 100) == -1.0
    assert threshold(config, 25, 100) == pytest.approx(-0.5)
    assert threshold(config, 400, 100) == 1.0  # capped at the end value
    assert acceptance(0.2, 0.0, 0.5) == 1.0  # above τ: always
    assert acceptance(-0.5, 0.0, 0.5) == pytest.approx(math.exp(-1.0))  # (r − τ)/β = −1
    assert acceptance(-10.0, 0.0, 0.5) == pytest.approx(math.exp(-20.0))


@pytest.mark.engine
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


@pytest.mark.engine
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
