"""fork_rollouts: where it forks, and on a real engine with tiny models the trunk, its fork points and rollouts, and
the pick."""

from __future__ import annotations

import asyncio

import pytest

from sla_engine.search import ForkRolloutsConfig
from sla_engine.search.fork_rollouts import ForkRollouts, fork_points, runner_up
from tests.helpers.engine_thread import PROMPT, run
from tests.helpers.search import TOL


def test_fork_points_are_runner_ups_at_chunk_boundaries_spread_evenly():
    ups = [100 + i for i in range(60)]  # every position has a runner-up
    assert fork_points(ups, chunk=10, last=480, most=8) == [(10, 110), (20, 120), (30, 130), (40, 140), (50, 150)]
    assert [at for at, _ in fork_points(ups[:50], 10, 480, 8)] == [10, 20, 30, 40]  # not at the answer's last token
    assert [at for at, _ in fork_points(ups, 10, 39, 8)] == [10, 20, 30]  # at most `last` tokens in
    assert [at for at, _ in fork_points(ups, 10, 480, 2)] == [10, 30]  # 5 eligible, step 2.5: the 1st and 3rd
    assert [at for at, _ in fork_points(ups, 10, 480, 3)] == [10, 20, 40]  # step 5/3: indices 0, 1, 3
    gaps = [None if i in (20, 30) else u for i, u in enumerate(ups)]  # no plausible runner-up there
    assert [at for at, _ in fork_points(gaps, 10, 480, 8)] == [10, 40, 50]
    assert fork_points(ups[:10], 10, 480, 4) == []  # shorter than a chunk and a token: nothing to fork


def test_uncertain_placement_forks_where_the_policy_was_least_sure():
    ups = [100 + i for i in range(60)]
    entropy = [0.1] * 60
    entropy[40], entropy[20], entropy[30] = 2.0, 1.5, 1.5  # 20 and 30 tie: the earlier goes first
    assert fork_points(ups, 10, 480, 2, entropy) == [(20, 120), (40, 140)]  # the two least sure, in answer order
    assert fork_points(ups, 10, 480, 3, entropy) == [(20, 120), (30, 130), (40, 140)]
    entropy[45] = 9.0  # not a chunk boundary: never a fork point
    assert fork_points(ups, 10, 480, 1, entropy) == [(40, 140)]
    assert fork_points(ups, 10, 480, 8, entropy) == fork_points(ups, 10, 480, 8)  # room for all: the same


def test_the_runner_up_is_the_best_rival_other_than_the_token_written():
    assert runner_up(5, (5, 9)) == 9
    assert runner_up(5, (9, 5)) == 9  # a tie the sampler broke the other way
    assert runner_up(5, (5,)) is None  # the min_p filter left no rival


def expected_candidates(ref, prompt, budget, chunk, at_points):
    """The reference's greedy trunk and, at each of `at_points`, the runner-up token then greedy to `budget`."""
    trunk = ref.chunk(prompt, [], None, budget)
    forks = []
    for at in at_points:
        token = next(t for t in ref.top(prompt + trunk[:at], 2) if t != trunk[at])
        forks.append(ref.chunk(prompt, trunk[:at], token, budget - at))
    return [trunk, *forks]


@pytest.mark.engine
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


@pytest.mark.engine
def test_uncertain_placement_forks_at_the_boundaries_of_highest_reference_entropy(tiny_search):
    runner, ref, _ = tiny_search
    config = ForkRolloutsConfig(forks=2, chunk=4, fork_min_p=0.0, place="uncertain")
    search = ForkRollouts(runner.engine, PROMPT, config, 20)
    run(runner, search)
    trunk = search.candidates[0].tokens
    # the entropy the token at each boundary was drawn from (boundaries 4, 8, 12, 16; at most 4 in total)
    entropy = {at: ref.entropy(PROMPT + trunk[:at]) for at in (4, 8, 12, 16)}
    least_sure = sorted(sorted(entropy, key=lambda at: -entropy[at])[:2])
    assert [c.tokens for c in search.candidates] == expected_candidates(ref, PROMPT, 20, 4, least_sure)
    assert search.stats.counters["forks"] == 2 and search.stats.settings["place"] == "uncertain"


@pytest.mark.engine
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


@pytest.mark.engine
def test_without_a_plausible_runner_up_it_is_greedy_in_one_request(tiny_search):
    runner, ref, _ = tiny_search
    search = ForkRollouts(runner.engine, PROMPT, ForkRolloutsConfig(chunk=4, fork_min_p=1.0), 20)
    [commit] = run(runner, search)  # only an exact tie passes min_p 1.0
    assert commit.tokens == ref.chunk(PROMPT, [], None, 20) and commit.finish_reason == "length"
    assert search.stats.counters["forks"] == 0 and search.stats.branches_forked == 0
    assert search.stats.tokens_generated == 21


@pytest.mark.engine
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
