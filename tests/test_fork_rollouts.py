"""fork_rollouts on a real engine with tiny models: the trunk, its fork points and rollouts, and the pick
checked against the transformers fp32 reference (tests/sla_reference.py); a runner-up too unlikely means
greedy in one request; closing it early, in either phase, leaves nothing in the engine."""

from __future__ import annotations

import asyncio

import pytest

from sla_engine.search import ForkRolloutsConfig
from sla_engine.search.fork_rollouts import ForkRollouts
from tests.engine_thread import PROMPT, run

pytestmark = pytest.mark.engine

TOL = 1e-3


def expected_candidates(ref, prompt, budget, chunk, at_points):
    """The reference's greedy trunk and, at each of `at_points`, the runner-up token then greedy to `budget`."""
    trunk = ref.chunk(prompt, [], None, budget)
    forks = []
    for at in at_points:
        token = next(t for t in ref.top(prompt + trunk[:at], 2) if t != trunk[at])
        forks.append(ref.chunk(prompt, trunk[:at], token, budget - at))
    return [trunk, *forks]


def test_fork_rollouts_answers_with_the_candidate_the_reference_scores_best(tiny_search):
    runner, ref, _ = tiny_search
    config = ForkRolloutsConfig(forks=3, chunk=4, fork_min_p=0.0)  # every boundary has a runner-up
    search = ForkRollouts(runner.engine, PROMPT, config, 20)
    first, rest = run(runner, search)
    # boundaries 4, 8, 12, 16 (not past the trunk's last token); three spread evenly: 4, 8, 12
    expected = expected_candidates(ref, PROMPT, 20, 4, [4, 8, 12])
    assert [c.tokens for c in search.candidates] == expected
    means = []
    for c in search.candidates:
        rewards = ref.rewards(PROMPT, c.tokens)
        assert len(c.rewards) == 20 and c.rewards == pytest.approx(rewards, abs=TOL)  # the last token's too
        means.append(sum(rewards) / len(rewards))
    best = expected[means.index(max(means))]
    assert first.tokens == expected[0][:4] and first.finish_reason is None  # what every candidate shares
    assert first.tokens + rest.tokens == best and rest.finish_reason == "length"
    stats = search.stats
    assert stats.counters["forks"] == 3 and stats.branches_forked == 3 and stats.tokens_emitted == 20
    assert stats.tokens_generated == 21 + (20 - 4) + (20 - 8) + (20 - 12)  # each request's look-ahead included
    assert stats.prefix_cache_hit_rate > 0.75  # a fork's prompt is the trunk's prefix (cached in whole blocks)


def test_fork_rollouts_picks_by_the_read_out(tiny_search):
    """`score: "last"` takes the candidate whose last token's reward is highest, where the mean takes another."""
    runner, ref, _ = tiny_search
    config = ForkRolloutsConfig(forks=4, chunk=3, fork_min_p=0.0, score="last")
    for shift in range(12):
        prompt = PROMPT[shift:] + PROMPT[:shift]
        search = ForkRollouts(runner.engine, prompt, config, 15)
        commits = run(runner, search)
        rewards = [ref.rewards(prompt, c.tokens) for c in search.candidates]
        last = [r[-1] for r in rewards]
        means = [sum(r) / len(r) for r in rewards]
        if last.index(max(last)) != means.index(max(means)):
            break
    else:
        pytest.fail("no prompt made the two read-outs pick different candidates")
    assert [t for c in commits for t in c.tokens] == search.candidates[last.index(max(last))].tokens
    assert search.stats.settings["score"] == "last"


def test_without_a_plausible_runner_up_it_is_greedy_in_one_request(tiny_search):
    runner, ref, _ = tiny_search
    search = ForkRollouts(runner.engine, PROMPT, ForkRolloutsConfig(chunk=4, fork_min_p=1.0), 20)
    [commit] = run(runner, search)  # only an exact tie passes min_p 1.0
    assert commit.tokens == ref.chunk(PROMPT, [], None, 20) and commit.finish_reason == "length"
    assert search.stats.counters["forks"] == 0 and search.stats.branches_forked == 0
    assert search.stats.tokens_generated == 21


@pytest.mark.parametrize("phase", ["trunk", "forks"])
def test_closing_it_early_aborts_every_request(tiny_search, phase):
    runner, _, _ = tiny_search
    config = ForkRolloutsConfig(forks=4, chunk=10, fork_min_p=0.0)

    async def go():
        search = ForkRollouts(runner.engine, PROMPT, config, 400)
        commits = search.commits()
        if phase == "forks":
            await commits.__anext__()  # the trunk is written; four forks of ~390 tokens each started
            await asyncio.sleep(0.05)  # an idle machine writes them in ~0.5 s (CI once saw one finish)
            running = runner.engine.num_unfinished_requests()
        else:
            task = asyncio.ensure_future(commits.__anext__())
            await asyncio.sleep(1.0)  # the trunk is being written
            running = runner.engine.num_unfinished_requests()
            task.cancel()  # as a dropped client's handler is
            await asyncio.gather(task, return_exceptions=True)
        await commits.aclose()
        return search, running

    search, running = runner.run(go())
    assert running == (4 if phase == "forks" else 1)
    assert runner.engine.num_unfinished_requests() == 0
    runner.run(asyncio.sleep(0.5))
    assert runner.engine.scheduler_counts.running == 0 and runner.engine.scheduler_counts.waiting == 0
    assert search.stats.branches_aborted == (4 if phase == "forks" else 0)
