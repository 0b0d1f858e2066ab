"""best_of_n, fork_rollouts, cards, tree and rsd over the API (the shared `sla_server`, which also runs a target
engine):
answers, stream shape, search_stats that add up, 400s for bad settings, nothing left running after a
client drops a stream."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.test_sla_server import engine_idle, open_streams, stream_text

pytestmark = pytest.mark.engine

QUESTION = [{"role": "user", "content": "Explain in a few sentences why the sky is blue."}]
STRATEGIES = {
    "best_of_n": {"strategy": "best_of_n", "n": 3, "prune_at": 8},
    "fork_rollouts": {"strategy": "fork_rollouts", "forks": 2, "chunk": 4, "fork_min_p": 0.0},
    "cards": {"strategy": "cards", "max_segment": 16, "max_rejections": 2},
    "tree": {"strategy": "tree", "segment": 8, "paths": 4},
    "rsd": {"strategy": "rsd", "max_step": 16},
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_answers_streams_and_reports(sla_server, name):
    client = sla_server.client()
    args = dict(model=sla_server.model, messages=QUESTION, max_tokens=32, seed=11,
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


def test_a_seed_makes_the_sampling_strategies_reproducible(sla_server):
    client = sla_server.client()
    for name in ("best_of_n", "tree"):
        args = dict(model=sla_server.model, messages=QUESTION, max_tokens=16, seed=5,
                    extra_body={"search": STRATEGIES[name]})
        a, b = (client.chat.completions.create(**args).choices[0].message.content for _ in range(2))
        assert a == b


def test_best_of_n_answers_by_a_majority_vote_when_asked(sla_server):
    search = {"strategy": "best_of_n", "n": 3, "prune_at": 0, "select": "vote"}
    full = sla_server.client().chat.completions.create(model=sla_server.model, messages=QUESTION, max_tokens=16,
                                                       seed=11, extra_body={"search": search})
    body = full.search_stats
    assert body["select"] == "vote" and body["samples"] == 3 and body["samples_pruned"] == 0
    assert full.choices[0].message.content and body["tokens_emitted"] == full.usage.completion_tokens <= 16


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
        "model": sla_server.model, "messages": QUESTION, "max_tokens": 8, "search": search})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


def test_sampling_fields_are_refused_with_a_search(sla_server):
    r = sla_server.http().post("/v1/chat/completions", json={
        "model": sla_server.model, "messages": QUESTION, "max_tokens": 8, "temperature": 0.5,
        "search": {"strategy": "best_of_n"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"


def test_dropped_streams_of_every_strategy_leave_nothing_running(sla_server):
    bodies = [{"model": sla_server.model, "stream": True, "max_tokens": 300, "search": search,
               "messages": [{"role": "user", "content": f"Write a long essay about topic {i}."}]}
              for i, search in enumerate(list(STRATEGIES.values()) * 2)]
    disconnects = sla_server.metric("sla:client_disconnects_total")
    clients, streams, responses = open_streams(sla_server, bodies)
    readers = [r.iter_lines() for r in responses]
    assert all(r.status_code == 200 for r in responses)
    for lines in readers:  # the role chunk: every search has started
        next(line for line in lines if '"role"' in line)
    assert wait_for(lambda: sla_server.metric("sla:engine_unfinished_requests") >= len(bodies), timeout=30)
    for s, c in zip(streams, clients):
        s.__exit__(None, None, None)
        c.close()
    assert wait_for(lambda: engine_idle(sla_server), timeout=60)
    assert sla_server.metric("sla:client_disconnects_total") - disconnects == len(bodies)
