"""Fork rollouts (sla_pipeline/data/forks.py): where forks go and which sibling pairs they make (the engine
side is in test_sampling_and_judging.py)."""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace

import pytest

from sla_pipeline.data.forks import (
    Answer,
    ForkedProblem,
    ForkPoint,
    ForkSettings,
    fork_outcomes,
    fork_pairs,
    fork_points,
    fork_problem,
)
from sla_pipeline.data.pairs import Pair
from sla_pipeline.data.sources import Item


def flat(n: int, greedy: list[int], runner_up: dict[int, tuple[int, float]]) -> list[dict[int, float]]:
    """Top-2 log-probs for `n` positions: the greedy token at log 0.5, and at the positions in `runner_up`
    a second token with the given log-prob (elsewhere one far below e^-10 of the greedy one)."""
    top = []
    for i in range(n):
        token, lp = runner_up.get(i, (999, math.log(0.5) - 20))
        top.append({greedy[i]: math.log(0.5), token: lp})
    return top


def test_fork_points_are_plausible_runner_ups_at_chunk_boundaries():
    greedy = list(range(100, 160))
    half = math.log(0.5)
    top = flat(60, greedy, {10: (7, half - 1.0), 15: (8, half), 20: (9, half - 3.0), 30: (5, half - 0.5)})
    points = fork_points(greedy, top, ForkSettings(chunk=10, min_ratio=0.1, max_fork_at=50))
    # 15 is no boundary; at 20 the runner-up is e^-3 < 0.1 times as likely; 40 and 50 have no plausible one
    assert points == [ForkPoint(10, 7, pytest.approx(-1.0)), ForkPoint(30, 5, pytest.approx(-0.5))]


def test_fork_points_stop_at_the_answer_end_and_at_max_fork_at():
    greedy = list(range(100, 131))  # 31 tokens: a fork at 30 replaces the last one (SLA forks there too)
    top = flat(31, greedy, {i: (7, math.log(0.4)) for i in range(31)})
    assert [p.at for p in fork_points(greedy, top, ForkSettings(chunk=10, max_fork_at=200))] == [10, 20, 30]
    assert [p.at for p in fork_points(greedy[:30], top[:30], ForkSettings(chunk=10, max_fork_at=200))] == [10, 20]
    assert [p.at for p in fork_points(greedy, top, ForkSettings(chunk=10, max_fork_at=19))] == [10]


def test_fork_points_are_spread_evenly_when_there_are_too_many():
    greedy = list(range(100, 200))
    top = flat(100, greedy, {i: (7, math.log(0.4)) for i in range(100)})
    points = fork_points(greedy, top, ForkSettings(chunk=10, per_problem=3, max_fork_at=90))
    assert [p.at for p in points] == [10, 40, 70]  # 9 eligible boundaries, every third


def test_fork_settings_are_validated():
    with pytest.raises(ValueError, match="min_ratio"):
        ForkSettings(min_ratio=0.0)
    with pytest.raises(ValueError, match="max_fork_at"):
        ForkSettings(max_fork_at=511, max_tokens=512)
    with pytest.raises(ValueError, match="positive"):
        ForkSettings(per_problem=0)


def problem(trunk: str, *forks: tuple[int, str, str | None]) -> ForkedProblem:
    return ForkedProblem("gsm/t1-s0-0", Answer(trunk, "stop", 50),
                         tuple((ForkPoint(at, 7, -1.25), Answer(text, finish, 60)) for at, text, finish in forks))


ITEM = Item("gsm/t1-s0-0", "gsm", "train", ({"role": "user", "content": "2 + 3?"},), answer=5.0)


def test_fork_pairs_keep_only_forks_that_change_the_verdict():
    pairs = fork_pairs(ITEM, problem("so \\boxed{6}", (10, "so \\boxed{5}", "stop"), (20, "so \\boxed{7}", "stop"),
                                     (30, "so \\boxed{5} and on", "length"), (40, "no number", "stop")))
    # fork 20 is wrong like the trunk; 30 did not finish; 40 gives no number
    assert pairs == [Pair("gsm/t1-s0-0@10", "gsm_fork", ITEM.id, "train", ITEM.messages, "so \\boxed{5}",
                          "so \\boxed{6}", {"method": "fork_rollout", "answer": 5.0, "fork_at": 10,
                                            "log_ratio": -1.25, "chosen": "fork"})]


def test_a_right_trunk_is_chosen_over_its_wrong_forks_and_an_unfinished_trunk_makes_no_pairs():
    pairs = fork_pairs(ITEM, problem("\\boxed{5}", (10, "\\boxed{4}", "stop"), (20, "\\boxed{3}", "stop")))
    assert [(p.chosen, p.rejected, p.label["chosen"]) for p in pairs] == [("\\boxed{5}", "\\boxed{4}", "trunk"),
                                                                         ("\\boxed{5}", "\\boxed{3}", "trunk")]
    cut = ForkedProblem(ITEM.id, Answer("\\boxed{4}", "length", 512), problem("x", (10, "\\boxed{5}", "stop")).forks)
    assert fork_pairs(ITEM, cut) == []


def test_fork_outcomes_count_each_fork_by_what_it_did_to_the_trunk_verdict():
    wrong_trunk = problem("so \\boxed{6}", (10, "\\boxed{5}", "stop"), (20, "\\boxed{7}", "stop"),
                          (30, "cut", "length"))
    assert fork_outcomes(ITEM, wrong_trunk) == {"trunk wrong": 1, "wrong->right": 1, "wrong->wrong": 1, "unjudged": 1}
    right_trunk = problem("\\boxed{5}", (10, "\\boxed{4}", "stop"), (20, "\\boxed{5}.", "stop"))
    assert fork_outcomes(ITEM, right_trunk) == {"trunk right": 1, "right->wrong": 1, "right->right": 1}


def test_forked_problem_round_trips_through_json():
    p = problem("\\boxed{5}", (10, "\\boxed{4}", "stop"), (20, "x", None))
    assert ForkedProblem.from_json(p.to_json()) == p


class ScriptedEngine:
    """Stands in for the engine where a random tiny model cannot be made to rank EOS second: the trunk is
    `trunk` with `runner_up` as each position's second token, and every rollout is `rest`."""

    eos_token_ids = frozenset({0})

    def __init__(self, trunk: list[int], runner_up: dict[int, int], rest: list[int]):
        self.trunk, self.runner_up, self.rest, self.prompts = trunk, runner_up, rest, []
        self.tokenizer = SimpleNamespace(decode=lambda ids, skip_special_tokens: " ".join(map(str, ids)))

    def chat_prompt_ids(self, messages) -> list[int]:
        return [7, 7]

    async def generate(self, prompt: list[int], params):
        self.prompts.append(prompt)
        if params.logprobs:
            first, second = SimpleNamespace(logprob=math.log(0.6)), SimpleNamespace(logprob=math.log(0.3))
            top = [{t: first, self.runner_up.get(i, 5): second} for i, t in enumerate(self.trunk)]
            yield SimpleNamespace(outputs=[SimpleNamespace(token_ids=self.trunk, logprobs=top, finish_reason="stop")])
        else:
            yield SimpleNamespace(outputs=[SimpleNamespace(token_ids=self.rest, logprobs=None, finish_reason="stop")])


def test_a_fork_into_end_of_sequence_ends_the_answer_without_a_rollout():
    trunk = list(range(100, 130)) + [0]
    engine = ScriptedEngine(trunk, runner_up={10: 0, 20: 99}, rest=[5, 6, 0])
    got = asyncio.run(fork_problem(engine, ITEM, ForkSettings(chunk=10, per_problem=2, max_fork_at=20, max_tokens=64)))
    (at10, eos_fork), (at20, rolled) = got.forks
    assert (at10.at, at10.token, at20.at, at20.token) == (10, 0, 20, 99)
    assert eos_fork == Answer(" ".join(map(str, trunk[:10] + [0])), "stop", 11)
    assert rolled == Answer(" ".join(map(str, trunk[:20] + [99, 5, 6, 0])), "stop", 24)
    assert engine.prompts == [[7, 7], [7, 7] + trunk[:20] + [99]]  # the trunk, then one rollout only
