"""A head's choices on the bank's pairs, and best-of-N replayed by the server's rule
(sla_pipeline/training/choices.py)."""

from __future__ import annotations

from sla_pipeline.bank.pairs import candidate_pairs, sibling_pairs
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.training.choices import (
    best_of_n_replay,
    choice_accuracy,
    fork_over_greedy,
    keep_trunk,
    read,
    trunk_share,
)
from tests.helpers.bank_answers import answer


def test_pairs_are_the_two_choices_of_a_search():
    trunk = answer("p", "trunk", [1, 2, 3], True, kind="trunk")
    same = answer("p", "fork@1", [1, 8, 3], True, kind="fork", parent="p#trunk", fork_at=1, fork_token=8)
    flip = answer("p", "fork@2", [1, 2, 9], False, kind="fork", parent="p#trunk", fork_at=2, fork_token=9)
    s0, s1 = answer("p", "s0", [4], False), answer("p", "s1", [5], True)
    [sib] = sibling_pairs([trunk, same, flip, s0, s1])
    assert (sib.right.id, sib.wrong.id, sib.parting) == ("p#trunk", "p#fork@2", 2)
    assert sib.seen(1) == (3, 3) and sib.seen(None) == (3, 3)
    assert {(p.right.id, p.wrong.id) for p in candidate_pairs([trunk, same, flip, s0, s1])} == {
        ("p#trunk", "p#s0"), ("p#s1", "p#s0")}  # forks are not best-of-N's candidates
    assert {(p.right.id, p.wrong.id) for p in candidate_pairs([trunk, same, flip, s0, s1], "fork")} == {
        ("p#trunk", "p#fork@2"), ("p#fork@1", "p#fork@2")}  # read whole, the forks are, and samples are not
    assert read([1.0, 2.0, 6.0], 2, "mean") == 1.5 and read([1.0, 2.0, 6.0], 2, "last") == 2.0


def test_best_of_n_is_replayed_with_the_servers_rule_against_greedy_and_a_majority_vote():
    def problem(item, trunk, *samples):  # (right, finish, score) per answer, the trunk first; given 1 if right else 0
        answers = [answer(item, "trunk", [1], trunk[0], kind="trunk", split="heldout", finish=trunk[1])]
        answers += [answer(item, f"s{i}", [2 + i], right, split="heldout", finish=finish)
                    for i, (right, finish, _) in enumerate(samples)]
        return answers, {a.id: v[2] for a, v in zip(answers, (trunk, *samples))}

    problems = [
        problem("a", (True, "stop", 0.1), (False, "stop", 0.9)),  # a wrong sample outscores greedy: broke
        problem("b", (False, "length", 0.9), (True, "stop", 0.2)),  # greedy was cut: fixed if finished ones rank first
        problem("c", (True, "stop", 0.5), (False, "stop", 0.5)),  # a tie goes to the first drawn, greedy
        problem("d", (False, "stop", None), (False, "stop", None)),  # one outcome: never scored
        problem("g", (False, "stop", 0.9), (True, "stop", 0.1), (True, "stop",
                                                                 0.2)),  # the head keeps greedy, two agree
        problem("e", (True, "stop", None)),  # nothing to choose
    ]
    no_trunk = [answer("f", f"s{i}", [i], i == 0, split="heldout") for i in range(2)]
    records = [r for answers, _ in problems for r in answers] + no_trunk
    scores = {k: v for _, s in problems for k, v in s.items() if v is not None}

    def score(a: BankRecord, seen: int) -> float:
        return scores[a.id]  # a KeyError if an unmixed problem were scored

    replay = best_of_n_replay(records, score, 512)
    assert (replay["problems"], replay["candidates"], replay["greedy"], replay["oracle"]) == (5, 3, 0.4, 0.8)
    pick, vote = replay["pick"], replay["vote"]
    assert (pick["accuracy"], pick["fixed"], pick["broke"], pick["changed_right"]) == (0.4, 1, 1, 0.5)
    assert (vote["accuracy"], vote["fixed"], vote["broke"]) == (0.6, 2, 1)  # a 1-1 vote goes to the head's pick
    plain = best_of_n_replay(records, score, 512, prefer_finished=False)["pick"]  # b keeps greedy's higher score
    assert (plain["accuracy"], plain["fixed"], plain["broke"], plain["gain"]) == (0.2, 0, 1, -0.2)
    assert best_of_n_replay(no_trunk, score, 512) == {"problems": 0}


def test_the_trunk_and_its_forks_are_replayed_as_best_of_n_over_greedy_rollouts():
    trunk = answer("p", "trunk", [1, 2, 3], False, kind="trunk", split="heldout", finish="stop")
    forks = [answer("p", f"fork@{i}", [1, 8 + i, 3], i == 1, kind="fork", split="heldout", finish="stop",
                    parent="p#trunk", fork_at=1, fork_token=8 + i) for i in range(3)]
    sample = answer("p", "s0", [4], False, split="heldout", finish="stop")
    scores = {"p#trunk": 0.1, "p#fork@0": 0.3, "p#fork@1": 0.5, "p#fork@2": 0.2, "p#s0": 0.9}
    replay = best_of_n_replay([trunk, *forks, sample], lambda a, seen: scores[a.id], 512, kind="fork")
    assert (replay["problems"], replay["candidates"], replay["oracle"]) == (1, 4, 1.0)  # the sample is not one
    assert (replay["pick"]["fixed"], replay["pick"]["broke"]) == (1, 0)
    assert replay["vote"]["fixed"] == 0  # the three wrong answers all give 0: they outvote the right one


def test_the_fork_is_taken_over_greedy_only_above_the_margin():
    pairs, scores = [], {}
    for i, (trunk_right, fork_minus_trunk) in enumerate([(False, 3.0), (True, 2.0), (False, 1.0), (True, -1.0)]):
        trunk = answer(f"p{i}", "trunk", [1, 2, 3], trunk_right, kind="trunk", split="heldout")
        fork = answer(f"p{i}", "fork@1", [1, 9, 3], not trunk_right, kind="fork", split="heldout",
                      parent=f"p{i}#trunk", fork_at=1, fork_token=9)
        pairs += sibling_pairs([trunk, fork])
        scores |= {trunk.id: 0.0, fork.id: fork_minus_trunk}
    result = fork_over_greedy(pairs, lambda a, seen: scores[a.id], 2, 512, quantiles=(0.0, 0.5, 0.75))
    assert result["pairs"] == 4
    rows = [(m["margin"], m["taken"], m["fixed"], m["broke"], m["changed_right"]) for m in result["margins"]]
    # |differences| sorted 1, 1, 2, 3: the paper's rule takes every fork that scores higher (3 of 4, 2 right);
    # above the median (2) only the largest, a right one; nothing is above the largest
    assert rows == [(0.0, 3, 2, 1, 2 / 3), (2.0, 1, 1, 0, 1.0), (3.0, 0, 0, 0, None)]


def test_keeping_the_trunk_is_the_baseline_and_a_head_says_how_often_it_keeps_it():
    records = []
    for i, trunk_right in enumerate([True, True, False, True]):
        records.append(answer(f"p{i}", "trunk", [1, 2, 3, 4], trunk_right, kind="trunk"))
        records.append(answer(f"p{i}", "fork@2", [1, 2, 9, 9], not trunk_right, kind="fork", parent=f"p{i}#trunk",
                              fork_at=2, fork_token=9))
    siblings = sibling_pairs(records)
    assert choice_accuracy(siblings, keep_trunk, 2, 512)["accuracy"] == 0.75
    assert trunk_share(siblings, keep_trunk, 2, 512) == 1.0
    by_token = lambda a, seen: float(a.token_ids[seen - 1])  # noqa: E731 - reads the last token seen
    assert trunk_share(siblings, by_token, 1, 512) == 0.0  # one token past the fork: 9 over the trunk's 3
    assert trunk_share(siblings, lambda a, seen: 0.0, 2, 512) == 0.5  # ties count one half
    assert trunk_share([], keep_trunk, 2, 512) is None
