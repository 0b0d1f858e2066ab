"""SLA over the API: the `search` extension field, streamed commits, search_stats, errors, the live-branch
cap, and branch hygiene under many dropped streams. One `sla serve` with a random head on the test model."""

from __future__ import annotations

import pytest

from tests.conftest import SLA_SERVER_BRANCH_CAP as CAP
from tests.conftest import SLA_SERVER_MAX_REQUESTS as MAX_REQUESTS
from tests.conftest import SLA_SERVER_SEARCH as DEFAULT_SEARCH
from tests.conftest import first_content, wait_for

pytestmark = pytest.mark.engine

QUESTION = [{"role": "user", "content": "Name three rivers in Europe and say one thing about each."}]
STORY = [{"role": "user", "content": "Tell me a very long story about a dragon."}]


def stream_text(client, **kwargs) -> tuple[str, list, dict]:
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = [c for c in chunks if c.choices and c.choices[0].finish_reason][0]
    return text, chunks, last.search_stats


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


def test_the_first_chunk_streams_before_it_is_complete(sla_server):
    """The first chunk has nothing to be chosen against: its tokens stream as they are written, so an SLA
    stream of three 10-token chunks sends more deltas than chunks (later chunks are chosen, then sent whole)."""
    client = sla_server.client()
    text, chunks, stats = stream_text(client, model=sla_server.model, messages=STORY, max_tokens=30,
                                      extra_body={"search": {"strategy": "sla", "width": 2, "chunk": 10, "depth": 1}})
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert stats["tokens_emitted"] == 30 and len(deltas) > 3, deltas
    assert len(deltas[0]) < len(text) // 3  # the first delta is a piece of the first chunk, not all of it


def test_width_1_is_greedy_over_the_api(sla_server):
    client = sla_server.client()
    common = dict(model=sla_server.model, messages=QUESTION, max_tokens=30)
    greedy = client.chat.completions.create(**common, extra_body={"search": {"strategy": "greedy"}})
    sla_1 = client.chat.completions.create(**common, extra_body={"search": {"strategy": "sla", "width": 1}})
    assert sla_1.choices[0].message.content == greedy.choices[0].message.content
    assert greedy.search_stats["strategy"] == "greedy" and greedy.search_stats["branches_forked"] == 0


def test_the_server_default_search_applies_to_requests_without_one(sla_server):
    r = sla_server.client().chat.completions.create(model=sla_server.model, messages=QUESTION, max_tokens=12)
    assert {k: r.search_stats[k] for k in DEFAULT_SEARCH} == DEFAULT_SEARCH
    # plain sampling on request
    r = sla_server.client().chat.completions.create(model=sla_server.model, messages=QUESTION, max_tokens=12,
                                                    temperature=0.8, extra_body={"search": {"strategy": "sample"}})
    assert r.usage.completion_tokens > 0 and "search_stats" not in r.model_dump()


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


def test_sla_on_a_server_without_a_head_is_refused_and_greedy_works(server, client):
    with server.http() as h:
        r = h.post("/v1/chat/completions", json={"model": server.model, "messages": QUESTION,
                                                 "search": {"strategy": "sla"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "search.strategy"
    assert "reward head" in r.json()["error"]["message"]
    g = client.chat.completions.create(model=server.model, messages=QUESTION, max_tokens=8,
                                       extra_body={"search": {"strategy": "greedy"}})
    assert g.search_stats["strategy"] == "greedy" and g.search_stats["tokens_emitted"] == 8


def engine_idle(live) -> bool:
    return (live.metric("sla:engine_unfinished_requests") == 0 and live.metric("sla:engine_scheduler_running") == 0
            and live.metric("sla:engine_scheduler_waiting") == 0 and live.metric("sla:live_branches_reserved") == 0)


def open_streams(live, bodies: list[dict]):
    clients = [live.http(timeout=600) for _ in bodies]
    streams = [c.stream("POST", "/v1/chat/completions", json=b) for c, b in zip(clients, bodies)]
    return clients, streams, [s.__enter__() for s in streams]


def test_fifty_sla_streams_half_dropped_leave_nothing_running(sla_server):
    n = 50
    # the half to be dropped asks for long answers, so each is still running when its client goes away
    bodies = [{"model": sla_server.model, "stream": True, "max_tokens": 300 if i < n // 2 else 24,
               "messages": [{"role": "user", "content": f"Tell me a very long story about dragon number {i}."}]}
              for i in range(n)]
    disconnects = sla_server.metric("sla:client_disconnects_total")  # the server is shared with other tests
    clients, streams, responses = open_streams(sla_server, bodies)
    readers = [r.iter_lines() for r in responses]  # keep references: dropping one closes its connection
    assert all(r.status_code == 200 for r in responses)
    # the long half is running (the short half may be done already on a slow machine): 4 branches each
    assert n // 2 * 4 <= sla_server.metric("sla:live_branches_reserved") <= n * 4
    for lines in readers[: n // 2]:  # these have committed text; then their clients go away
        first_content(lines)
    for s in streams[: n // 2]:
        s.__exit__(None, None, None)
    for lines in readers[n // 2:]:  # the others run to the end
        events = [line for line in lines if line.startswith("data:")]
        assert events[-1] == "data: [DONE]" and '"search_stats":{"strategy":"sla"' in events[-2]
    for s, c in zip(streams[n // 2:], clients):
        s.__exit__(None, None, None)
    for c in clients:
        c.close()
    assert wait_for(lambda: engine_idle(sla_server), timeout=60)
    assert sla_server.metric("sla:client_disconnects_total") - disconnects == n // 2


def test_the_live_branch_cap_answers_429_and_recovers(sla_server):
    deep = {"strategy": "sla", "width": 2, "chunk": 4, "depth": 4}  # 32 live branches each
    # a long answer, so that no tree ends (and frees its branches) while the others are still being opened
    body = {"model": sla_server.model, "stream": True, "max_tokens": 1500, "messages": STORY, "search": deep}
    clients, streams, responses = open_streams(sla_server, [body] * (CAP // 32))
    try:
        assert all(r.status_code == 200 for r in responses)
        client = sla_server.client()
        with pytest.raises(Exception) as refused:
            client.chat.completions.create(model=sla_server.model, messages=QUESTION, max_tokens=4,
                                           extra_body={"search": deep})
        assert getattr(refused.value, "status_code", None) == 429
        assert refused.value.body["code"] == "rate_limit_exceeded"
        assert sla_server.metric("sla:requests_rejected_total", cap="branches") >= 1
    finally:
        for s, c in zip(streams, clients):
            s.__exit__(None, None, None)
            c.close()
    assert wait_for(lambda: engine_idle(sla_server), timeout=60)
    r = sla_server.client().chat.completions.create(model=sla_server.model, messages=QUESTION, max_tokens=4,
                                                    extra_body={"search": deep})
    assert r.choices[0].finish_reason == "length"


def test_the_concurrent_request_cap_answers_429_with_retry_after_and_recovers(sla_server):
    greedy = {"strategy": "greedy"}  # one branch each: only the request cap can refuse
    # ignore_eos: none of the streams may end (and free its slot) while the others are still being opened
    body = {"model": sla_server.model, "stream": True, "max_tokens": 1500, "ignore_eos": True, "messages": QUESTION,
            "search": greedy}
    clients, streams, responses = open_streams(sla_server, [body] * MAX_REQUESTS)
    try:
        assert all(r.status_code == 200 for r in responses)
        assert sla_server.metric("sla:requests_admitted") == MAX_REQUESTS
        with sla_server.http() as h:
            refused = h.post("/v1/chat/completions", json={**body, "stream": False, "max_tokens": 4})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert "concurrent requests" in refused.json()["error"]["message"]
        assert sla_server.metric("sla:requests_rejected_total", cap="requests") >= 1
    finally:
        for s, c in zip(streams, clients):
            s.__exit__(None, None, None)
            c.close()
    assert wait_for(lambda: engine_idle(sla_server) and sla_server.metric("sla:requests_admitted") == 0, timeout=60)
    r = sla_server.client().chat.completions.create(model=sla_server.model, messages=QUESTION, max_tokens=4,
                                                    extra_body={"search": greedy})
    assert r.choices[0].finish_reason == "length"
