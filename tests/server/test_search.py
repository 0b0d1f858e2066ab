"""The `search` field over the API, on the shared `sla_server` (a random head, a default search, small admission
caps, and a target engine for rsd): streamed commits, search_stats, errors, the caps, dropped streams."""

from __future__ import annotations

import pytest

from tests.helpers.servers import SLA_SERVER_SEARCH as DEFAULT_SEARCH
from tests.helpers.servers import engine_idle, open_streams, wait_for

QUESTION = [{"role": "user", "content": "Name three rivers in Europe and say one thing about each."}]


STORY = [{"role": "user", "content": "Tell me a very long story about a dragon."}]


def stream_text(client, **kwargs) -> tuple[str, list, dict]:
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = [c for c in chunks if c.choices and c.choices[0].finish_reason][0]
    return text, chunks, last.search_stats


@pytest.mark.engine
def test_streamed_commits_equal_the_non_stream_text_and_carry_search_stats(sla_server):
    client = sla_server.client()
    args = dict(model=sla_server.model, messages=QUESTION, max_tokens=40, seed=7,
                extra_body={"search": {"strategy": "sla", "width": 2, "chunk": 5, "depth": 2}})
    full = client.chat.completions.create(**args)
    text, chunks, stats = stream_text(client, **args)
    assert text == full.choices[0].message.content and text
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert 1 < len(content_chunks) <= 5 + 40 // 5  # the first chunk token by token, then a delta per chunk
    body = full.search_stats
    assert body["strategy"] == "sla" and (body["width"], body["chunk"], body["depth"]) == (2, 5, 2)
    assert body["tokens_emitted"] == full.usage.completion_tokens <= 40
    assert body["tokens_generated"] > body["tokens_emitted"]  # look-ahead and pruned branches
    assert body["branches_forked"] > 0 and body["branches_aborted"] > 0
    assert 0.5 < body["prefix_cache_hit_rate"] <= 1.0 and isinstance(body["mean_reward"], float)
    # the same search; the reward may differ in the last bits (other requests share the batch)
    assert {**stats, "mean_reward": None} == {**body, "mean_reward": None}
    assert stats["mean_reward"] == pytest.approx(body["mean_reward"], rel=1e-4)
    assert sla_server.metric("sla:search_branches_forked_total") > 0
    assert sla_server.metric("sla:search_branch_cached_tokens_total") > 0


@pytest.mark.engine
def test_the_first_chunk_streams_before_it_is_complete(sla_server):
    """The first chunk has nothing to be chosen against: its tokens stream as they are written, so an SLA
    stream of three 10-token chunks sends more deltas than chunks (later chunks are chosen, then sent whole)."""
    client = sla_server.client()
    text, chunks, stats = stream_text(client, model=sla_server.model, messages=STORY, max_tokens=30,
                                      extra_body={"search": {"strategy": "sla", "width": 2, "chunk": 10, "depth": 1}})
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert stats["tokens_emitted"] == 30 and len(deltas) > 3, deltas
    assert len(deltas[0]) < len(text) // 3  # the first delta is a piece of the first chunk, not all of it


@pytest.mark.engine
def test_width_1_is_greedy_over_the_api(sla_server):
    client = sla_server.client()
    common = dict(model=sla_server.model, messages=QUESTION, max_tokens=30)
    greedy = client.chat.completions.create(**common, extra_body={"search": {"strategy": "greedy"}})
    sla_1 = client.chat.completions.create(**common, extra_body={"search": {"strategy": "sla", "width": 1}})
    assert sla_1.choices[0].message.content == greedy.choices[0].message.content
    assert greedy.search_stats["strategy"] == "greedy" and greedy.search_stats["branches_forked"] == 0


@pytest.mark.engine
def test_the_server_default_search_applies_to_requests_without_one(sla_server):
    r = sla_server.client().chat.completions.create(model=sla_server.model, messages=QUESTION, max_tokens=12)
    assert {k: r.search_stats[k] for k in DEFAULT_SEARCH} == DEFAULT_SEARCH
    # plain sampling on request
    r = sla_server.client().chat.completions.create(model=sla_server.model, messages=QUESTION, max_tokens=12,
                                                    temperature=0.8, extra_body={"search": {"strategy": "sample"}})
    assert r.usage.completion_tokens > 0 and "search_stats" not in r.model_dump()


@pytest.mark.engine
@pytest.mark.parametrize("fields,param", [
    ({"search": {"width": 0}}, "search.width"),
    ({"search": {"width": 9}}, "search.width"),
    ({"search": {"width": 8, "depth": 2}}, "search.width"),  # 512 live branches for one request
    ({"search": {"chunk": 0}}, "search.chunk"),
    ({"search": {"depth": -1}}, "search.depth"),
    ({"search": {"fork_min_p": 2}}, "search.fork_min_p"),
    ({"search": {"strategy": "beam"}}, "search.strategy"),
    ({"search": {"width": "2"}}, "search.width"),
    ({"search": {"beam": 2}}, "search.beam"),
    ({"search": "sla"}, "search"),
    ({"temperature": 0.7}, "temperature"),  # the default search decodes by argmax: not silently ignored
    ({"search": {"strategy": "greedy"}, "top_p": 0.5}, "top_p"),
    ({"ignore_eos": True}, "ignore_eos"),  # SLA branches end at EOS
])
def test_invalid_search_settings_are_400_naming_the_field(sla_server, fields, param):
    with sla_server.http() as h:
        r = h.post("/v1/chat/completions", json={"model": sla_server.model, "messages": QUESTION, **fields})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.engine
def test_sla_on_a_server_without_a_head_is_refused_and_greedy_works(server, client):
    with server.http() as h:
        r = h.post("/v1/chat/completions", json={"model": server.model, "messages": QUESTION,
                                                 "search": {"strategy": "sla"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "search.strategy"
    assert "reward head" in r.json()["error"]["message"]
    g = client.chat.completions.create(model=server.model, messages=QUESTION, max_tokens=8,
                                       extra_body={"search": {"strategy": "greedy"}})
    assert g.search_stats["strategy"] == "greedy" and g.search_stats["tokens_emitted"] == 8


SKY = [{"role": "user", "content": "Explain in a few sentences why the sky is blue."}]


STRATEGIES = {
    "best_of_n": {"strategy": "best_of_n", "n": 3, "prune_at": 8},
    "fork_rollouts": {"strategy": "fork_rollouts", "forks": 2, "chunk": 4, "fork_min_p": 0.0},
    "cards": {"strategy": "cards", "max_segment": 16, "max_rejections": 2},
    "tree": {"strategy": "tree", "segment": 8, "paths": 4},
    "rsd": {"strategy": "rsd", "max_step": 16},
}


@pytest.mark.engine
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_answers_streams_and_reports(sla_server, name):
    client = sla_server.client()
    args = dict(model=sla_server.model, messages=SKY, max_tokens=32, seed=11,
                extra_body={"search": STRATEGIES[name]})
    full = client.chat.completions.create(**args)
    text, chunks, stats = stream_text(client, **args)
    assert full.choices[0].message.content and full.choices[0].finish_reason in ("stop", "length")
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    if name in ("best_of_n", "tree"):  # the answer is known only at the end: one piece
        assert len(content) == 1
    if name == "fork_rollouts":  # the trunk before its first fork, then the rest of the best candidate
        assert len(content) <= 2
    body = full.search_stats
    assert body["strategy"] == name and stats["strategy"] == name
    assert {k: body[k] for k in STRATEGIES[name]} == STRATEGIES[name]  # the settings that ran
    assert body["tokens_emitted"] == full.usage.completion_tokens <= 32
    assert body["tokens_generated"] >= body["tokens_emitted"]
    if name == "best_of_n":
        assert body["samples"] == 3 and body["samples_pruned"] == 1  # ceil(0.5 · 3) = 2 go on
    if name == "fork_rollouts":
        assert body["forks"] == body["branches_forked"] <= 2 and body["score"] in ("mean", "last")
    if name == "cards":
        assert body["segments_accepted"] + body["segments_forced"] >= 1
    if name == "tree":
        assert 1 <= body["paths_finished"] and body["branches_forked"] >= 1
    if name == "rsd":
        assert body["draft_tokens"] + body["target_tokens"] == body["tokens_generated"]
        assert body["steps_draft"] + body["steps_target"] >= 1 and 0.0 <= body["target_share"] <= 1.0
        assert body["compute_vs_target"] > 0
    assert wait_for(lambda: engine_idle(sla_server), timeout=30)


@pytest.mark.engine
def test_a_seed_makes_the_sampling_strategies_reproducible(sla_server):
    client = sla_server.client()
    for name in ("best_of_n", "tree"):
        args = dict(model=sla_server.model, messages=SKY, max_tokens=16, seed=5,
                    extra_body={"search": STRATEGIES[name]})
        a, b = (client.chat.completions.create(**args).choices[0].message.content for _ in range(2))
        assert a == b


@pytest.mark.engine
def test_best_of_n_answers_by_a_majority_vote_when_asked(sla_server):
    search = {"strategy": "best_of_n", "n": 3, "prune_at": 0, "select": "vote"}
    full = sla_server.client().chat.completions.create(model=sla_server.model, messages=SKY, max_tokens=16,
                                                       seed=11, extra_body={"search": search})
    body = full.search_stats
    assert body["select"] == "vote" and body["samples"] == 3 and body["samples_pruned"] == 0
    assert full.choices[0].message.content and body["tokens_emitted"] == full.usage.completion_tokens <= 16


@pytest.mark.engine
@pytest.mark.parametrize("search,param", [
    ({"strategy": "best_of_n", "n": 0}, "search.n"),
    ({"strategy": "best_of_n", "n": 2, "batch": 3}, "search.batch"),
    ({"strategy": "best_of_n", "keep": 1.5}, "search.keep"),
    ({"strategy": "best_of_n", "width": 2}, "search.width"),  # an SLA setting
    ({"strategy": "best_of_n", "select": "best"}, "search.select"),
    ({"strategy": "best_of_n", "select": "vote", "threshold": 0.5}, "search.threshold"),
    ({"strategy": "fork_rollouts", "forks": 0}, "search.forks"),
    ({"strategy": "fork_rollouts", "chunk": 20, "last_fork_at": 10}, "search.last_fork_at"),
    ({"strategy": "cards", "entropy": 0}, "search.entropy"),
    ({"strategy": "cards", "min_segment": 10, "max_segment": 5}, "search.max_segment"),
    ({"strategy": "cards", "n": 3}, "search.n"),
    ({"strategy": "tree", "paths": 0}, "search.paths"),
    ({"strategy": "tree", "temperature": 5.0}, "search.temperature"),
    ({"strategy": "rsd", "threshold": -0.1}, "search.threshold"),
    ({"strategy": "rsd", "max_step": "8"}, "search.max_step"),
    ({"strategy": "tree", "paths": 10**6}, "search.paths"),
])
def test_invalid_strategy_settings_are_400_naming_the_field(sla_server, search, param):
    r = sla_server.http().post("/v1/chat/completions", json={
        "model": sla_server.model, "messages": SKY, "max_tokens": 8, "search": search})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.engine
def test_sampling_fields_are_refused_with_a_search(sla_server):
    r = sla_server.http().post("/v1/chat/completions", json={
        "model": sla_server.model, "messages": SKY, "max_tokens": 8, "temperature": 0.5,
        "search": {"strategy": "best_of_n"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"


def finished_streams(live, strategy: str) -> float:
    """Streams of `strategy` that ran to their end with content (each observes one TPOT); 0 before the first."""
    return live.metric("sla:time_per_output_token_seconds_count", absent=0.0, strategy=strategy)


@pytest.mark.engine
def test_dropped_streams_of_every_strategy_leave_nothing_running(sla_server):
    names = list(STRATEGIES) * 2
    bodies = [{"model": sla_server.model, "stream": True, "max_tokens": 300, "search": STRATEGIES[name],
               "messages": [{"role": "user", "content": f"Count from {i} to 1000 in words, one number per line."}]}
              for i, name in enumerate(names)]
    disconnects = sla_server.metric("sla:client_disconnects_total")
    finished = {name: finished_streams(sla_server, name) for name in STRATEGIES}
    clients, streams, responses = open_streams(sla_server, bodies)
    readers = [r.iter_lines() for r in responses]
    assert all(r.status_code == 200 for r in responses)
    for lines in readers:  # the role chunk: every search has started
        next(line for line in lines if '"role"' in line)

    def ended() -> dict[str, float]:  # streams that reached their end (a short answer can, before the close)
        return {name: finished_streams(sla_server, name) - finished[name] for name in STRATEGIES}

    # every search that has not ended has branches in the engine (a CI run saw one end before this held)
    assert wait_for(lambda: sla_server.metric("sla:engine_unfinished_requests") >= len(bodies) - sum(ended().values()),
                    timeout=30)
    for s, c in zip(streams, clients):
        s.__exit__(None, None, None)
        c.close()
    assert wait_for(lambda: engine_idle(sla_server), timeout=60)
    # A stream can reach its end (EOS) before the close on a slow machine; it is then rightly no disconnect.
    # Every other one must be counted, and each strategy must have had a stream cut off mid-search.
    by_strategy = ended()
    assert all(n < 2 for n in by_strategy.values()), f"both streams of a strategy ended before the close: {by_strategy}"
    dropped = sla_server.metric("sla:client_disconnects_total") - disconnects
    assert dropped == len(bodies) - sum(by_strategy.values()), f"{dropped} disconnects, ended: {by_strategy}"
