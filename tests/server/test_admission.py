"""Admission control: both caps hold and tickets give back exactly what they took, on their own and over HTTP
(a 429 with Retry-After, then the server recovers)."""

from __future__ import annotations

import pytest

from server.admission import Admission, Overloaded
from tests.helpers.servers import SLA_SERVER_BRANCH_CAP as CAP
from tests.helpers.servers import SLA_SERVER_MAX_REQUESTS as MAX_REQUESTS
from tests.helpers.servers import engine_idle, open_streams, wait_for

QUESTION = [{"role": "user", "content": "Name three rivers in Europe and say one thing about each."}]
STORY = [{"role": "user", "content": "Tell me a very long story about a dragon."}]


def test_the_branch_cap_refuses_and_releases():
    admission = Admission(max_requests=100, max_branches=10)
    a = admission.admit(8)
    with pytest.raises(Overloaded, match="cap of 10 live search branches") as refused:
        admission.admit(4)
    assert refused.value.reason == "branches"
    b = admission.admit(2)
    a.release()
    a.release()  # idempotent
    assert (admission.requests, admission.branches) == (1, 2)
    b.release()
    assert (admission.requests, admission.branches) == (0, 0)


def test_the_request_cap_refuses_before_the_branch_cap():
    admission = Admission(max_requests=2, max_branches=100)
    tickets = [admission.admit(1), admission.admit(1)]
    with pytest.raises(Overloaded, match="2 concurrent requests") as refused:
        admission.admit(1)
    assert refused.value.reason == "requests"
    tickets[0].release()
    admission.admit(1)
    assert admission.requests == 2 and admission.branches == 2


@pytest.mark.parametrize("caps", [(0, 10), (10, 0)])
def test_caps_must_be_positive(caps):
    with pytest.raises(ValueError):
        Admission(*caps)


def test_rejections_are_exported_at_zero_for_every_cap_before_the_first():
    """A dashboard panel of 429s by cap has a series from the start (deploy/grafana), not "no data"."""
    from prometheus_client import generate_latest

    from server.admission import CAPS
    from server.metrics import ServerMetrics

    text = generate_latest(ServerMetrics().registry).decode()
    for cap in CAPS:
        assert f'sla:requests_rejected_total{{cap="{cap}"}} 0.0' in text
    with pytest.raises(Overloaded) as refused:
        Admission(max_requests=1, max_branches=10).admit(11)
    assert refused.value.reason in CAPS


@pytest.mark.engine
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


@pytest.mark.engine
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
