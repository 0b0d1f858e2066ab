"""The search's pure parts: settings validation, the tree's scores, committed text, the live-branch cap."""

from __future__ import annotations

import pytest

from sla_engine.search import (
    BestOfNConfig,
    CardsConfig,
    Chunk,
    CommittedText,
    PlainConfig,
    RsdConfig,
    SearchConfigError,
    SlaConfig,
    TreeConfig,
    make_config,
)
from sla_engine.search.tree import Node


@pytest.mark.parametrize("given,field", [
    (dict(strategy="beam"), "strategy"), (dict(width=0), "width"), (dict(width=9), "width"),
    (dict(chunk=0), "chunk"), (dict(depth=5), "depth"), (dict(width=4, depth=3), "width"),
    (dict(fork_min_p=1.5), "fork_min_p"), (dict(fork_min_p=-0.1), "fork_min_p"),
    (dict(lookahead="eos"), "lookahead"), (dict(lookahead="end", prefer_finished="yes"), "prefer_finished"),
    (dict(width=True), "width"), (dict(n=4), "n"),  # a boolean is not a width; n is best_of_n's
    (dict(strategy="best_of_n", n=17), "n"), (dict(strategy="best_of_n", n=4, batch=5), "batch"),
    (dict(strategy="best_of_n", keep=0.0), "keep"), (dict(strategy="best_of_n", temperature=0), "temperature"),
    (dict(strategy="best_of_n", top_k=-1), "top_k"), (dict(strategy="best_of_n", top_k=1001), "top_k"),
    (dict(strategy="best_of_n", greedy_first=1), "greedy_first"),
    (dict(strategy="best_of_n", threshold=float("nan")), "threshold"), (dict(strategy="best_of_n", chunk=4), "chunk"),
    (dict(strategy="best_of_n", select="best"), "select"),
    (dict(strategy="best_of_n", select="vote", threshold=0.5), "threshold"),  # a vote counts every sample
    (dict(strategy="cards", min_segment=8, max_segment=4), "max_segment"), (dict(strategy="cards", beta=3), "beta"),
    (dict(strategy="cards", entropy=-1.0), "entropy"), (dict(strategy="cards", max_rejections=101), "max_rejections"),
    (dict(strategy="tree", width=1), "width"), (dict(strategy="tree", paths=33), "paths"),
    (dict(strategy="rsd", threshold=1.5), "threshold"), (dict(strategy="rsd", max_step=0), "max_step"),
    (dict(strategy="greedy", width=2), "width"),
    (dict(strategy="fork_rollouts", forks=0), "forks"), (dict(strategy="fork_rollouts", forks=17), "forks"),
    (dict(strategy="fork_rollouts", chunk=20, last_fork_at=10), "last_fork_at"),
    (dict(strategy="fork_rollouts", fork_min_p=1.1), "fork_min_p"),
    (dict(strategy="fork_rollouts", score="max"), "score"), (dict(strategy="fork_rollouts", n=4), "n"),
])
def test_invalid_settings_name_their_field(given, field):
    with pytest.raises(SearchConfigError) as e:
        make_config(given)
    assert e.value.field == field


def test_settings_left_out_come_from_the_default_of_the_same_strategy():
    default = SlaConfig(width=3, chunk=6, depth=1)
    assert make_config({"depth": 2}, default) == SlaConfig(3, 6, 2)  # no strategy: the default's
    assert make_config({"strategy": "tree"}, default) == TreeConfig()  # another strategy: its own defaults
    assert make_config({"chunk": 4}) == SlaConfig(chunk=4)  # plain default + tree settings: sla
    assert make_config({"n": 8}, BestOfNConfig(temperature=0.3)) == BestOfNConfig(n=8, temperature=0.3)
    assert make_config({"strategy": "greedy"}, default) == PlainConfig("greedy")


def test_live_branches_per_request():
    assert SlaConfig(2, 10, 2).max_live_branches == 8
    assert SlaConfig(3, 10, 0).max_live_branches == 1  # depth 0: nothing to look ahead, no forks
    assert SlaConfig(3, 10, 0, lookahead="end").max_live_branches == 3  # one rollout per candidate, any depth
    assert SlaConfig(8, 10, 4, lookahead="end").max_live_branches == 8  # no tree: width ** (depth + 1) is moot
    assert PlainConfig("greedy").max_live_branches == PlainConfig("sample").max_live_branches == 1
    assert BestOfNConfig(n=8).max_live_branches == 8 and BestOfNConfig(n=8, batch=2).max_live_branches == 2
    assert TreeConfig(paths=12).max_live_branches == 12
    assert CardsConfig().max_live_branches == RsdConfig().max_live_branches == 1


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


class CharTokenizer:
    """One character per id, 0 is a special token."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids if not (skip_special_tokens and i == 0))


def ids(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_committed_text_holds_back_possible_stop_prefixes_and_stops():
    text = CommittedText(CharTokenizer(), stop=["END"])
    assert text.add(ids("hello E")) == "hello"  # "E" might start "END"
    assert text.add(ids("X wor")) == " EX w"
    assert text.add(ids("ld EN")) == "orld "  # the last len("END") - 1 characters wait
    assert text.add(ids("D tail")) == "" and text.stopped  # "EN" + "D" completes the stop string


def test_committed_text_flushes_at_the_end_and_skips_special_tokens():
    text = CommittedText(CharTokenizer())
    assert text.add(ids("ab")) == "ab"
    assert text.add(ids("c") + [0], last=True) == "c" and not text.stopped



def test_search_stats_report_the_settings_in_force():
    assert BestOfNConfig(n=4).as_dict()["batch"] == 4  # "all at once" is reported as the batch it means
    assert BestOfNConfig(n=4, batch=2).as_dict()["batch"] == 2
    # the search reports the read-out in force (base.py)
    assert SlaConfig().as_dict() == {"strategy": "sla", "width": 2, "chunk": 10, "depth": 2, "fork_min_p": 0.0,
                                     "score": None, "lookahead": "chunks", "prefer_finished": False}


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
