"""SLA's tree: a candidate's score is its best leaf's, a branch finishes at its budget or the context's end, long
paths walk without recursion."""

from __future__ import annotations

import pytest

from sla_engine.search import (
    Chunk,
)
from sla_engine.search.sla_tree import Node


def chunk(tokens, rewards, next_tokens=(1, 2), finish=None):
    return Chunk(list(tokens), list(rewards), finish, list(next_tokens), len(tokens) + 1, 0, 0)


def test_a_candidate_scores_its_best_leaf_by_mean_reward_over_the_whole_response():
    root = Node(None, None, 0)
    root.settle(chunk([5, 6], [1.0, 1.0]), budget=100)
    a, b = Node(root, 1, 1), Node(root, 2, 1)
    root.children = [a, b]
    a.settle(chunk([1, 7], [0.0, 0.0]), 100)
    b.settle(chunk([2, 8], [0.5, 0.5]), 100)
    a1, a2 = Node(a, 1, 2), Node(a, 2, 2)
    a.children = [a1, a2]
    a1.settle(chunk([1, 1], [-1.0, -1.0]), 100)
    a2.settle(chunk([2, 2], [3.0, 3.0]), 100)  # a's best leaf: mean (1+1+0+0+3+3)/6 = 1.33
    b1 = Node(b, 1, 2)
    b.children = [b1]
    b1.settle(chunk([9], [1.0], finish="stop"), 100)  # finished early, still scored: (1+1+.5+.5+1)/5 = 0.8
    assert a.rank() == (False, pytest.approx(8 / 6)) and b.rank() == (False, pytest.approx(0.8))
    assert b.rank(prefer_finished=True) == (True, pytest.approx(0.8))  # b1 ended at EOS: b ranks above a now
    assert max([a, b], key=lambda n: n.rank(prefer_finished=True)) is b
    assert a2.path.tokens == [5, 6, 1, 7, 2, 2] and b1.finish_reason == "stop"


def test_budget_and_context_end_finish_a_branch():
    root = Node(None, None, 0)
    root.settle(chunk([1, 2, 3], [0, 0, 0]), budget=3)
    assert root.finish_reason == "length"
    end = Node(None, None, 0)
    end.settle(chunk([1, 2], [0, 0], next_tokens=()), budget=10)  # no position left after it
    assert end.finish_reason == "length"


def test_a_rollout_thousands_of_chunks_long_is_walked_without_recursion():
    """Looking ahead to the end with chunk 1, a candidate's rollout is one node per token."""
    root = node = Node(None, None, 0)
    for depth in range(1, 5000):
        node.children = [Node(node, 1, depth)]
        node = node.children[0]
    assert [n.depth for n in root.walk()] == list(range(5000)) and list(root.leaves()) == [node]
    a, b = Node(root, 1, 1), Node(root, 2, 1)
    branch = Node(None, None, 0, children=[a, b])
    a.children = [Node(a, 3, 2)]
    assert [n.fork for n in branch.walk()] == [None, 1, 3, 2]  # parents first, siblings in fork order
