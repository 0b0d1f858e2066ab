"""sla_pipeline/analyses/sample_choice.py: the head's pick, the vote, a perfect chooser and the pair ranking per
problem."""

from __future__ import annotations

import pytest

from sla_pipeline.analyses.sample_choice import Drawn, choice_report, pick, vote


def d(right: bool, value: float | None, reward: float, cut: bool = False, last: float = 0.0) -> Drawn:
    return Drawn(right, value, reward, last, cut)


def test_the_head_picks_the_best_mean_reward_and_the_first_drawn_among_equals():
    samples = [d(False, 1, 0.1, last=0.7), d(True, 2, 0.9), d(False, 3, 0.9)]
    assert pick(samples) == 1 and pick(samples, "last") == 0


def test_the_vote_takes_the_most_common_number_and_breaks_ties_by_reward():
    three = [d(False, 5, 0.9), d(True, 7, 0.1), d(True, 7, 0.2), d(False, None, 1.0)]
    assert vote(three) == 2  # 7 twice beats 5 once; of the 7s the better scored; no number does not vote
    tied = [d(False, 5, 0.3), d(True, 7, 0.1), d(False, 5, 0.2), d(True, 7, 0.4)]
    assert vote(tied) == 3  # 5 and 7 twice each: the value whose best sample scores higher
    assert vote([d(False, None, 0.1), d(False, None, 0.2)]) == 1  # nobody votes: the head's pick


def test_the_report_counts_picks_votes_the_oracle_and_right_over_wrong_pairs():
    problems = [
        [d(True, 1, 0.5), d(True, 1, 0.4)],  # all right
        [d(False, 2, 0.9), d(True, 3, 0.1, last=1.0), d(True, 3, 0.2)],  # the head picks the wrong one, the vote
        # and the last-token reward the right one
        [d(False, 4, 0.3), d(True, 5, 0.6), d(False, None, 0.8, cut=True)],  # the head picks a cut answer,
        # the vote (4 and 5 once each) the better scored of the two
        [d(False, 6, 0.1), d(False, 7, 0.2)],  # all wrong
    ]
    r = choice_report(problems, greedy=[True, False, True, False])
    assert r["problems"] == 4 and r["samples"] == 10 and r["sample"] == pytest.approx(5 / 10)
    assert (r["head"]["correct"], r["vote"]["correct"], r["oracle"]["correct"]) == (1, 3, 3)
    assert r["mixed_problems"] == 2 and r["head_on_mixed"] == 0
    assert r["sample_on_mixed"] == pytest.approx(2 / 3 + 1 / 3)
    # right-vs-wrong pairs: problem 2 has 2 (both ranked below), problem 3 has 2 (above 0.3, below 0.8)
    assert r["pairs"] == {"right_vs_wrong": 4, "right_above": 1, "tied": 0, "accuracy": 0.25}
    # by last-token reward: problem 2 one above and one tied (0 vs 0), problem 3 all tied at 0
    assert r["pairs_last"] == {"right_vs_wrong": 4, "right_above": 1, "tied": 3, "accuracy": 0.625}
    assert r["head_last"]["correct"] == 2 and r["head_last_vs_greedy"]["fixed"] == 1
    assert (r["cut"], r["head_picked_cut"]) == (1, 1)
    assert r["greedy"]["correct"] == 2
    assert (r["head_vs_greedy"]["fixed"], r["head_vs_greedy"]["broke"]) == (0, 1)
    assert (r["vote_vs_greedy"]["fixed"], r["vote_vs_greedy"]["broke"]) == (1, 0)  # problem 3: 4 vs 5 by reward
    assert (r["oracle_vs_greedy"]["fixed"], r["oracle_vs_greedy"]["broke"]) == (1, 0)
    assert "greedy" not in choice_report(problems)


def test_the_pairs_file_holds_every_right_over_wrong_pair_of_a_problem_with_its_texts(tmp_path):
    from sla_pipeline.analyses.sample_choice import sample_pairs
    from sla_pipeline.data.jsonl import JsonlWriter
    from sla_pipeline.data.pairs import read_pairs
    from sla_pipeline.data.sources import Item, user

    item = Item("gsm/h1", "gsm", "heldout", (user("2 + 3?"),), answer=5.0)
    samples = [{"text": "It is 5.", "right": True, "value": 5.0}, {"text": "It is 6.", "right": False, "value": 6.0},
               {"text": "Five: 5", "right": True, "value": 5.0}, {"text": "cut", "right": False, "value": None}]
    pairs = sample_pairs(item, samples)
    assert [(p.id, p.chosen, p.rejected) for p in pairs] == [
        ("gsm/h1#0>1", "It is 5.", "It is 6."), ("gsm/h1#0>3", "It is 5.", "cut"),
        ("gsm/h1#2>1", "Five: 5", "It is 6."), ("gsm/h1#2>3", "Five: 5", "cut")]
    # as many as the report's pair ranking counts
    drawn = [d(s["right"], s["value"], 0.0) for s in samples]
    assert len(pairs) == choice_report([drawn])["pairs"]["right_vs_wrong"]
    assert sample_pairs(item, [samples[0]]) == [] and sample_pairs(item, [samples[1], samples[3]]) == []
    with JsonlWriter(tmp_path / "pairs.jsonl") as w:  # what `sla score-pairs` reads
        for p in pairs:
            w.write(p.to_json())
    back = read_pairs(tmp_path / "pairs.jsonl")
    assert back == pairs and all((p.split, p.source, p.prompt) == ("heldout", "gsm", item.messages) for p in back)
