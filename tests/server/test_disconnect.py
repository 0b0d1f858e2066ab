"""A client that drops a stream mid-way leaves no request running in the engine: plain streams, and SLA's
search trees (every branch aborted)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.servers import engine_idle, first_content, open_streams, wait_for

pytestmark = pytest.mark.engine

DROPPED = 6


def test_dropped_streams_are_aborted_in_the_engine(server):
    body = {
        "model": server.model, "stream": True, "max_tokens": 400, "temperature": 0,
        "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}],
    }
    clients = [server.http() for _ in range(DROPPED)]
    streams = [c.stream("POST", "/v1/chat/completions", json=body) for c in clients]
    responses = [s.__enter__() for s in streams]
    # Keep each line iterator referenced: dropping one closes its connection (an early disconnect).
    readers = [r.iter_lines() for r in responses]
    for r, lines in zip(responses, readers):  # every stream is generating: it has sent content
        assert r.status_code == 200
        first_content(lines)
    assert server.metric("sla:engine_unfinished_requests") == DROPPED
    for s, c in zip(streams, clients):  # drop the connections mid-generation
        s.__exit__(None, None, None)
        c.close()

    assert wait_for(lambda: server.metric("sla:engine_unfinished_requests") == 0), "front end still tracks requests"
    assert server.metric("sla:client_disconnects_total") >= DROPPED

    # The scheduler's own counts, read while a probe request runs: only the probe is there. The gauges
    # hold the engine's last step, which may run ahead of the stream we read (a short probe had already
    # finished on the CI machine), so the probe is long and the gauge is polled while it streams.
    with server.http() as h, h.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = r.iter_lines()
        first_content(lines)
        assert wait_for(lambda: server.metric("sla:engine_scheduler_running") >= 1, timeout=10)
        assert server.metric("sla:engine_scheduler_running") == 1
        assert server.metric("sla:engine_scheduler_waiting") == 0
    assert wait_for(lambda: server.metric("sla:engine_unfinished_requests") == 0)


def test_non_stream_request_abandoned_by_its_client_is_aborted(server):
    body = {
        "model": server.model, "max_tokens": 2000, "temperature": 0,
        "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}],
    }
    with server.http(timeout=3) as h:
        try:
            h.post("/v1/chat/completions", json=body)
            raise AssertionError("2000 tokens in 3 s: the test no longer exercises an abandoned request")
        except httpx.ReadTimeout:
            pass  # the client gives up and closes its connection
    # Without the abort the engine would go on for tens of seconds.
    assert wait_for(lambda: server.metric("sla:engine_unfinished_requests") == 0, timeout=5)


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
