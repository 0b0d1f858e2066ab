"""The prefixes' Monte-Carlo values (sla_pipeline/analyses/prefix_value.py): which prefix a sibling pair is cut
to, how the bank's rollouts rank a pair (ties, answers finished inside the look-ahead, the first k rollouts,
pairs still lacking rollouts)."""

from __future__ import annotations

from sla_pipeline.analyses.prefix_value import summary, validation_siblings, value
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.bank.rollouts import by_prefix, drawn, pair_prefixes


def answer(item: str, name: str, ids: tuple[int, ...], correct: bool, split: str = "heldout",
           finish: str = "length") -> BankRecord:
    fork = dict(parent=f"{item}#trunk", fork_at=3, fork_token=ids[3]) if name != "trunk" else {}
    return BankRecord(f"{item}#{name}", "trunk" if name == "trunk" else "fork", split, item, None, "x", ids, finish,
                      7.0, 7.0 if correct else 1.0, correct, **fork)


def siblings():
    trunk = tuple(range(100))
    fork = (0, 1, 2, 99) + tuple(range(200, 296))  # parts from the trunk at token 3
    return [answer("a", "trunk", trunk, False), answer("a", "f3", fork, True),
            answer("b", "trunk", trunk, True), answer("b", "f3", fork[:10], False, finish="stop"),
            answer("c", "trunk", trunk, True, split="train"), answer("c", "f3", fork, False, split="train")]


def rollouts(parent: BankRecord, kept: int, *outcomes: bool, first: int = 0) -> list[BankRecord]:
    return [BankRecord(f"{parent.id}@{kept}#r{first + i}", "rollout", parent.split, parent.item, 5,
                       "x", parent.token_ids[:kept] + (1,), "stop", 7.0, None, c, parent=parent.id, fork_at=kept)
            for i, c in enumerate(outcomes)]


def test_pairs_are_the_validation_siblings_cut_past_where_they_part():
    pairs = validation_siblings(siblings(), None)
    assert [(p.item, p.parting) for p in pairs] == [("a", 3), ("b", 3)]  # the train pair is not read
    a, b = pairs
    right, wrong = pair_prefixes(a, 30)
    assert (right.answer, right.tokens, wrong.answer.id, wrong.tokens) == (a.right, 33, "a#trunk", 33)
    assert not right.read_whole and pair_prefixes(b, 30)[1].read_whole  # b's wrong fork ends inside the look-ahead
    assert pair_prefixes(a, 60)[0].key != right.key  # another look-ahead is another prefix


def test_pairs_are_ranked_by_the_share_of_right_rollouts():
    records = siblings()
    a, b = validation_siblings(records, None)
    records += rollouts(a.right, 33, True, False, True, True)  # 3/4 against 1/4: ranked right
    records += rollouts(a.wrong, 33, False, True, False, False)
    records += rollouts(b.right, 33, False, True, True, True)  # 3/4 against a finished wrong answer
    records += rollouts(a.right, 63, False, False, False, False)  # another look-ahead's: not read at 30
    records += rollouts(a.right, 33, *[True] * 4, first=4) + rollouts(a.wrong, 33, *[False] * 4, first=4)
    grouped = by_prefix(records)
    assert drawn(records)[a.right.id, 33] == 8 and drawn(records)[b.right.id, 33] == 4
    got = summary([a, b], grouped, per_prefix=4, lookahead=30)
    assert got["pairs"] == 2 and got["lookahead_accuracy"] == 1.0 and got["finished_in_window"] == 1
    first = {d["draws"]: d for d in got["by_draws"]}
    # with one rollout each: a's sides are right / wrong (ranked right); b's right side drew a wrong answer: a tie
    assert sorted(first) == [1, 2, 4] and first[1]["accuracy"] == 0.75 and first[1]["ties"] == 1
    assert got["mean_value"] == {"right": 0.75, "wrong": 0.125}
    assert summary([a, b], grouped, per_prefix=8, lookahead=30)["pairs"] == 1  # b's right side has only 4 (a: 8)
    assert summary([a, b], grouped, per_prefix=4, lookahead=60)["pairs"] == 0


def test_rollouts_are_read_in_index_order_whatever_the_bank_order():
    a = validation_siblings(siblings(), None)[0]
    records = rollouts(a.right, 33, False, True, first=10) + rollouts(a.right, 33, True, True)  # r10, r11, r0, r1
    prefix = pair_prefixes(a, 30)[0]
    grouped = by_prefix(records)
    assert [r.id[-3:] for r in grouped[prefix.key]] == ["#r0", "#r1", "r10", "r11"]
    assert value(prefix, grouped, 2) == 1.0 and value(prefix, grouped, 4) == 0.75
    assert value(prefix, grouped, 5) is None  # too few drawn
