"""The one ranking rule (sla_engine/search/ranking.py): scores, finished answers first, first drawn among equals, the
vote."""

from __future__ import annotations

from sla_engine.search.ranking import majority
from tests.helpers.search import best, sample


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
