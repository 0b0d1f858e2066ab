"""When a vote stops drawing (sla_engine/search/stopping.py): on crafted answer sequences, and on a real
engine with tiny models whose samples are given crafted final answers — it stops exactly when the rule says,
never changes the answer a full draw would vote for where the rule promises that, and says what it saved."""

from __future__ import annotations

import pytest

from sla_engine.search import BestOfNConfig, SearchConfigError
from sla_engine.search.best_of_n import BestOfN
from sla_engine.search.stopping import agree, decided, should_stop
from tests.helpers.engine_thread import PROMPT, run


def test_decided_stops_only_when_the_rest_cannot_overturn_the_leader():
    assert decided([7, 7, 7], remaining=2)  # 3 > 0 + 2
    assert not decided([7, 7, 7], remaining=3)  # 3 of 6: the last three could tie it
    assert decided([7, 7, 7, 8], remaining=1) and not decided([7, 7, 8], remaining=1)
    assert not decided([None, None, None], remaining=0)  # nobody votes
    assert decided([None, 7, 7], remaining=1)  # no answer is no vote


def test_agree_needs_the_last_window_to_be_one_answer():
    assert agree([3, 5, 5, 5], window=3) and not agree([5, 5, 3], window=3)
    assert not agree([5, 5], window=3)  # not a full window yet
    assert not agree([None, None, None], window=3)
    assert not should_stop("agree", [5, 5, 5], remaining=0, window=3)  # nothing left to save: simply complete
    assert not should_stop("all", [5] * 9, remaining=4, window=3)


def test_a_stop_rule_needs_a_vote_and_sets_the_first_batch():
    with pytest.raises(SearchConfigError) as e:
        BestOfNConfig(n=9, stop="decided")
    assert e.value.field == "stop"
    with pytest.raises(SearchConfigError):
        BestOfNConfig(n=9, select="vote", stop="sometimes")
    with pytest.raises(SearchConfigError):
        BestOfNConfig(n=9, select="vote", stop="agree", window=1)
    assert BestOfNConfig(n=9, select="vote", stop="decided").first_batch == 5  # the earliest it can decide
    assert BestOfNConfig(n=9, select="vote", stop="agree", window=3).first_batch == 3
    assert BestOfNConfig(n=9, select="vote", stop="agree").batch_size == 1
    assert BestOfNConfig(n=9, select="vote", stop="agree", batch=2).batch_size == 2
    assert BestOfNConfig(n=9, select="vote").first_batch == BestOfNConfig(n=9).batch_size == 9


class Crafted(BestOfN):
    """best_of_n whose finished samples give the final answers `CRAFTED[index]` (the tiny model writes no
    arithmetic): the engine draws real samples, the vote reads these."""

    crafted: list = []

    def _answer(self, sample):
        return self.crafted[sample.index]


def vote(runner, n: int, stop: str, crafted: list, **settings) -> Crafted:
    config = BestOfNConfig(n=n, temperature=1.0, prune_at=0, greedy_first=True, select="vote", stop=stop,
                           **settings)
    search = Crafted(runner.engine, PROMPT, config, 8, seed=5)
    search.crafted = crafted
    run(runner, search)
    return search


@pytest.mark.engine
def test_early_stops_draw_what_the_rule_says_and_keep_the_full_votes_answer(tiny_search):
    runner = tiny_search[0]
    answers = [4, 4, 9, 4, 4, 9, 9, 9, 9]  # full vote over 9: 9 wins 5 to 4
    full = vote(runner, 9, "all", answers)
    assert full.stats.counters["samples"] == 9 and full.stats.counters["samples_saved"] == 0
    # "decided" first draws 5 (4 4 9 4 4: 4 leads by 3 with 4 to come), then one at a time, and the lead never
    # exceeds what is left to draw: it draws all 9 and votes as the full draw
    decided_run = vote(runner, 9, "decided", answers)
    assert decided_run.stats.counters["samples"] == 9 and decided_run.stats.counters["samples_saved"] == 0
    assert committed_answer(decided_run) == committed_answer(full) == 9
    # a clear majority is decided early: 7 7 7 7 7 of 9 stops after the first batch of 5, saving 4
    early = vote(runner, 9, "decided", [7, 7, 7, 7, 7, 1, 2, 3, 4])
    assert early.stats.counters["samples"] == 5 and early.stats.counters["samples_saved"] == 4
    assert committed_answer(early) == 7 and len(early.samples) == 5
    # "agree" stops at the first window of agreeing answers: with a window of 2, after 4 4
    agreeing = vote(runner, 9, "agree", answers, window=2)
    assert agreeing.stats.counters["samples"] == 2 and agreeing.stats.counters["samples_saved"] == 7
    # with a window of 3 after 4 9 4 | 4 | 4: five drawn, and 4 answered where all nine would vote 9 (5 to 4)
    window3 = vote(runner, 9, "agree", [4, 9, 4, 4, 4, 9, 9, 9, 9], window=3)
    assert window3.stats.counters["samples"] == 5 and committed_answer(window3) == 4  # where the full vote says 9
    assert window3.stats.tokens_generated < full.stats.tokens_generated


def committed_answer(search: Crafted):
    winner = search.stats.answer.tokens
    return next(search.crafted[s.index] for s in search.samples if s.tokens == winner)
