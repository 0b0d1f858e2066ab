"""TreePO-style tree sampling on crafted paths, and on a real engine with tiny models."""

from __future__ import annotations

import pytest

from sla_engine.search import Chunk, TreeConfig
from sla_engine.search.tree_sampling import Path, TreeSampling, hand_over, repeats, split, winner
from tests.helpers.engine_thread import PROMPT, run
from tests.helpers.search import TOL, mean


def path(index, rewards, finish="stop", entropy=0.0, budget=1):
    return Path(list(range(len(rewards))), list(rewards), finish, index, budget, [0], entropy)


def test_tree_budget_splits_and_spare_budget_goes_to_the_most_uncertain_paths_first():
    assert split(8, 2) == [4, 4] and split(5, 2) == [3, 2] and split(7, 3) == [3, 2, 2] and split(1, 4) == [1]
    live = [path(0, [0.0], None, entropy=0.5), path(1, [0.0], None, entropy=2.0), path(2, [0.0], None, entropy=1.0)]
    hand_over(4, live)  # by entropy: 1, 2, 0, then 1 again
    assert [p.budget for p in live] == [2, 3, 2]


def test_tree_winner_is_the_best_mean_and_a_repeating_path_only_when_all_repeat():
    finished = [path(0, [1.0, 1.0], "repetition"), path(1, [0.2, 0.4]), path(2, [0.5, 0.1], "length")]
    assert winner(finished).index == 1  # 0.3 beats 0.3 later, and the repeating 1.0 is out
    assert winner([path(0, [0.1], "repetition"), path(1, [0.9], "repetition")]).index == 1


def test_repetition_is_a_16_token_run_into_the_new_segment_that_occurred_before():
    run = list(range(100, 116))
    assert repeats([1, 2] + run + [3] + run[:10], start=19) is False  # only 10 tokens of it again
    assert repeats([1, 2] + run + [3] + run, start=19) is True
    assert repeats(run + run[:8], start=16) is False
    assert repeats([7] * 40, start=32) is True  # a loop of one token
    assert repeats(list(range(64)), start=32) is False


def test_a_path_stops_when_its_new_segment_repeats():
    p = Path(index=0, budget=1)
    loop = list(range(200, 216))
    p.grow(Chunk(loop, [0.0] * 16, None, [1], 17, 5, 0, entropy=1.0), budget=100)
    assert p.finish_reason is None and p.entropy == 1.0
    p.grow(Chunk(loop, [0.0] * 16, None, [1], 17, 21, 0, entropy=0.1), budget=100)
    assert p.finish_reason == "repetition" and p.starts == [0, 16]
    child = p.copy(1, 2, upto=16)
    assert child.tokens == loop and child.starts == [0] and child.budget == 2 and child.finish_reason is None


@pytest.mark.engine
def test_tree_grows_a_budget_shaped_tree_and_returns_the_best_path(tiny_search):
    runner, ref, _ = tiny_search
    search = TreeSampling(runner.engine, PROMPT, TreeConfig(segment=4, width=2, paths=4, temperature=1.0), 12, seed=4)
    [commit] = run(runner, search)
    paths = search.finished
    assert len(paths) == 4 and all(len(p.tokens) == 12 and p.finish_reason == "length" for p in paths)
    assert len({tuple(p.tokens[:4]) for p in paths}) == 1  # the first segment is shared
    assert len({tuple(p.tokens[:8]) for p in paths}) == 2  # one fork after it, into two
    assert len({tuple(p.tokens) for p in paths}) == 4  # and each of those forked again
    means = [mean(ref.rewards(PROMPT, p.tokens)) for p in paths]
    assert [p.mean_reward for p in paths] == pytest.approx(means, abs=TOL)
    assert commit.tokens == paths[means.index(max(means))].tokens
    assert search.stats.branches_forked == 3 and search.stats.counters["paths_finished"] == 4
    assert search.stats.tokens_generated == (1 + 2 + 4) * 5  # 4-token segments, each with its look-ahead
