"""A request's search settings: validated, naming the field at fault; defaults per strategy; live branches."""

from __future__ import annotations

import pytest

from sla_engine.search import (
    BestOfNConfig,
    CardsConfig,
    PlainConfig,
    RsdConfig,
    SearchConfigError,
    SlaConfig,
    TreeConfig,
    make_config,
)


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
    (dict(strategy="best_of_n", select="best"), "select"), (dict(strategy="best_of_n", prune_by="entropy"), "prune_by"),
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
