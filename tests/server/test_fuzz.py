"""Fuzzing /v1/chat/completions from our own OpenAPI schema (schemathesis + hypothesis): no generated request,
valid or not, may get a 5xx, and the server stays healthy. CI runs FUZZ_EXAMPLES cases (default 300); the
larger run in loadtest/README.md sets SLA_FUZZ_EXAMPLES=2000."""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.engine

FUZZ_EXAMPLES = int(os.environ.get("SLA_FUZZ_EXAMPLES", 300))
MAX_FUZZ_TOKENS = 4  # valid requests generate a few tokens, so that hundreds of cases fit in minutes


def focus(body: object, model: str) -> None:
    """Points a generated body at the served model (else nearly every case is a 404) and keeps generation
    short, without making an input invalid that was valid or the other way round."""
    if not isinstance(body, dict):
        return
    if isinstance(body.get("model"), str):
        body["model"] = model
    limits = [name for name in ("max_tokens", "max_completion_tokens") if body.get(name) is not None]
    for name in limits:
        if isinstance(body[name], int) and not isinstance(body[name], bool) and body[name] > MAX_FUZZ_TOKENS:
            body[name] = MAX_FUZZ_TOKENS
    if not limits:  # absent or null: the whole context would be the budget
        body["max_tokens"] = MAX_FUZZ_TOKENS


def test_no_generated_request_gets_a_server_error(server):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", headers=headers)
    operation = schema["/v1/chat/completions"]["POST"]
    seen: dict[int, int] = {}
    last: list = []  # the body in flight, reported if the call itself fails

    @given(case=operation.as_strategy())
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        focus(case.body, server.model)
        last.clear()
        last.append(case.body)
        response = case.call(base_url=server.base_url, headers=headers, timeout=60)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}\nbody: {case.body!r}"
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["message"] and error["type"], error

    try:
        fuzz()
    except Exception:
        print(f"fuzz: the request in flight was {last!r}")
        raise
    print(f"fuzz: {sum(seen.values())} requests, statuses {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= FUZZ_EXAMPLES * 0.9
    assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
    assert seen.get(200, 0) > 0 and seen.get(400, 0) > 0  # both valid and invalid requests were generated
    with server.http() as h:
        assert h.get("/health").status_code == 200
