"""What a value head trains on: prefix-success labels, the positions trained, the bank's problems and rollouts."""

from __future__ import annotations

from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.problems import FORKS, ROLLOUTS
from sla_pipeline.training.value import (
    mixed,
    read_bank,
    with_siblings,
)
from sla_pipeline.training.value_data import prefix_success, value_examples
from tests.helpers.bank_answers import answer


def test_the_label_is_the_success_rate_of_the_answers_through_the_prefix():
    trunk = answer("p", "trunk", [1, 2, 3, 4], True, kind="trunk")
    fork = answer("p", "fork@2", [1, 2, 9, 9], False, kind="fork", parent="p#trunk", fork_at=2, fork_token=9)
    alone = answer("p", "s0", [1, 5, 6], False)
    rates = prefix_success([trunk, fork, alone])
    assert rates["p#trunk"] == [1 / 3, 1 / 2, 1.0, 1.0]  # three answers start with 1, two with 1 2
    assert rates["p#fork@2"] == [1 / 3, 1 / 2, 0.0, 0.0] and rates["p#s0"] == [1 / 3, 0.0, 0.0]


def test_by_default_a_value_head_trains_on_problems_with_both_outcomes():
    a, b = answer("p", "s0", [1], True), answer("p", "s1", [2], False)
    c, d = answer("q", "s0", [1], False), answer("q", "s1", [2], False)
    assert mixed([a, b, c, d]) == [a, b]
    trunk = answer("q", "trunk", [1, 2], False, kind="trunk")
    fork = answer("q", "fork@1", [1, 3], True, kind="fork", parent="q#trunk", fork_at=1, fork_token=3)
    assert with_siblings([a, b, c, d, trunk, fork]) == [c, d, trunk, fork]  # p has both outcomes but no siblings


def test_an_answer_is_trained_at_sparse_positions_its_last_scored_one_and_its_sibling_views():
    trunk = answer("p", "trunk", list(range(100, 160)), True, kind="trunk", finish="stop")  # 59 scored + EOS
    fork = answer("p", "fork@20", list(range(100, 120)) + list(range(300, 340)), False, kind="fork",
                  parent="p#trunk", fork_at=20, fork_token=300)
    by_id = {e.record.id: e for e in value_examples([trunk, fork], {"p": [7, 7]}, stride=16, limit=512)}
    assert by_id["p#trunk"].response.positions == (15, 29, 31, 39, 47, 49, 58)  # 58: the token before EOS
    assert by_id["p#fork@20"].response.positions == (15, 29, 31, 39, 47, 49, 59)
    assert by_id["p#fork@20"].labels == (0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert by_id["p#trunk"].response.response_ids == tuple(range(100, 159))  # the EOS itself is not scored
    # validation answers are kept only as far as a choice reads them; the others still label their prefixes
    alone = answer("p", "s0", list(range(100, 116)) + [1, 2], True)  # shares the first 16 tokens
    cut = value_examples([trunk, fork, alone], {"p": [7, 7]}, stride=16, limit=512, reach={"p#fork@20": 50})
    assert [e.record.id for e in cut] == ["p#fork@20"] and cut[0].response.positions == (15, 29, 31, 39, 47, 49)
    assert cut[0].labels[0] == 2 / 3


def test_the_bank_is_read_with_or_without_its_rollouts(tmp_path):
    trunk = answer("p", "trunk", [1, 2, 3], False, kind="trunk")
    rollout = answer("p", "trunk@2#r0", [1, 2, 5], True, kind="rollout", parent="p#trunk", fork_at=2)
    Collection(tmp_path / FORKS).append([trunk])
    Collection(tmp_path / ROLLOUTS).append([rollout])
    assert read_bank(tmp_path) == [trunk, rollout] and read_bank(tmp_path, rollouts=False) == [trunk]


def test_rollouts_label_the_prefix_they_continue_and_are_trained_past_it():
    trunk = answer("p", "trunk", list(range(100, 160)), False, kind="trunk")
    fork = answer("p", "fork@20", list(range(100, 120)) + list(range(300, 340)), True, kind="fork",
                  parent="p#trunk", fork_at=20, fork_token=300)
    rolled = [answer("p", f"trunk@50#r{i}", list(range(100, 150)) + [400 + i] * 20, i < 3, kind="rollout",
                     parent="p#trunk", fork_at=50) for i in range(4)]  # 3 of 4 continuations end right
    by_id = {e.record.id: e for e in value_examples([trunk, fork, *rolled], {"p": [7, 7]}, stride=16, limit=512)}
    trunk_labels = dict(zip(by_id["p#trunk"].response.positions, by_id["p#trunk"].labels))
    assert trunk_labels[49] == 3 / 5 and trunk_labels[59] == 0.0  # through token 50: the trunk and 4 rollouts
    assert trunk_labels[15] == 4 / 6  # shared with the (right) fork too
    assert by_id["p#trunk@50#r0"].response.positions == (63, 69) and by_id["p#trunk@50#r0"].labels == (1.0, 1.0)
    labels_only = {e.record.id: e for e in value_examples([trunk, fork, *rolled], {"p": [7, 7]}, stride=16,
                                                          limit=512, rollout_examples=False)}
    assert sorted(labels_only) == ["p#fork@20", "p#trunk"]  # `sla train --rollouts labels`: no rollout trains,
    assert labels_only["p#trunk"] == by_id["p#trunk"]  # yet the labels they give the trunk's prefix are the same
    short = answer("p", "trunk@50#r9", list(range(100, 150)) + [2], True, kind="rollout", parent="p#trunk",
                   fork_at=50, finish="stop")  # EOS at once: no position of its own
    assert "p#trunk@50#r9" not in {e.record.id for e in value_examples([trunk, short], {"p": [7]}, 16, 512)}
