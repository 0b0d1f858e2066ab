"""Bad input gets an OpenAI-shaped error with the right status, and the server stays healthy."""

from __future__ import annotations

import httpx
import openai
import pytest

from server.protocol import MAX_MESSAGES
from tests.helpers.servers import MAX_TOKENS_CAP

pytestmark = pytest.mark.engine

MESSAGES = [{"role": "user", "content": "hi"}]


def assert_openai_error(r: httpx.Response, status: int, param: str | None = ..., code: str | None = ...) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert err["type"] == ("invalid_request_error" if status < 500 else err["type"])
    if param is not ...:
        assert err["param"] == param
    if code is not ...:
        assert err["code"] == code
    return err


@pytest.fixture
def http(server):
    with server.http() as h:
        yield h
    with server.http() as h:  # after every bad request: still alive and serving
        assert h.get("/health").status_code == 200
        ok = h.post("/v1/chat/completions", json={"model": server.model, "messages": MESSAGES, "max_tokens": 2})
        assert ok.status_code == 200, ok.text


def post(http, body):
    return http.post("/v1/chat/completions", json=body)


def test_malformed_json(http):
    r = http.post("/v1/chat/completions", content=b'{"model": "x", "messages": [',
                  headers={"content-type": "application/json"})
    assert_openai_error(r, 400, code="invalid_json")
    assert_openai_error(http.post("/v1/chat/completions", content=b""), 400, code="invalid_json")
    assert_openai_error(http.post("/v1/chat/completions", content=b"[1, 2]"), 400, code="invalid_json")


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "M"}, "messages"),
        ({"model": "M", "messages": []}, "messages"),
        ({"messages": MESSAGES}, "model"),
        ({"model": "M", "messages": "hello"}, "messages"),
        ({"model": "M", "messages": [{"role": "user"}]}, "messages.0.content"),
        ({"model": "M", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"model": "M", "messages": MESSAGES, "max_tokens": "many"}, "max_tokens"),
        ({"model": "M", "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"model": "M", "messages": MESSAGES, "temperature": 5}, "temperature"),
        ({"model": "M", "messages": MESSAGES, "stream": "yes"}, "stream"),
        ({"model": "M", "messages": MESSAGES, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "M", "messages": MESSAGES, "n": 2}, "n"),
        ({"model": "M", "messages": MESSAGES, "seed": -(2**63) - 1}, "seed"),  # found by tests/server/test_fuzz.py
        ({"model": "M", "messages": MESSAGES, "seed": 2**63}, "seed"),
        ({"model": "M", "messages": MESSAGES, "logit_bias": {"1": 5}}, "logit_bias"),
        ({"model": "M", "messages": MESSAGES, "stream_options": {"include_usage": True}}, None),
    ],
)
def test_invalid_requests_are_400_with_param(http, server, body, param):
    body = {k: (server.model if v == "M" else v) for k, v in body.items()}
    assert_openai_error(post(http, body), 400, param=param)


def test_limits_on_max_tokens_and_messages_are_400(http, server):
    over = MAX_TOKENS_CAP + 500  # fits the context, passes the server's cap
    r = post(http, {"model": server.model, "messages": MESSAGES, "max_tokens": over})
    assert_openai_error(r, 400, param="max_tokens")
    assert f"at most {MAX_TOKENS_CAP}" in r.json()["error"]["message"]
    r = post(http, {"model": server.model, "messages": MESSAGES, "max_completion_tokens": over})
    assert_openai_error(r, 400, param="max_completion_tokens")
    r = post(http, {"model": server.model, "messages": MESSAGES * (MAX_MESSAGES + 1), "max_tokens": 1})
    assert_openai_error(r, 400, param="messages")
    chat = MESSAGES + [{"role": "assistant", "content": "hello"}] + MESSAGES
    assert post(http, {"model": server.model, "messages": chat, "max_tokens": MAX_TOKENS_CAP,
                       "stop": [" ", "\n"]}).status_code == 200  # the cap itself is allowed; stop keeps it short


def test_context_overflow_is_400(http, server):
    r = post(http, {"model": server.model, "messages": MESSAGES, "max_tokens": 10_000_000})
    assert_openai_error(r, 400, param="max_tokens", code="context_length_exceeded")
    long = [{"role": "user", "content": "word " * 5000}]
    assert_openai_error(post(http, {"model": server.model, "messages": long}), 400, code="context_length_exceeded")


def test_unknown_model_is_404(http):
    assert_openai_error(post(http, {"model": "gpt-7", "messages": MESSAGES}), 404, param="model",
                        code="model_not_found")


def test_unknown_route_and_method(http):
    assert_openai_error(http.get("/v1/nothing"), 404)
    assert_openai_error(http.get("/v1/chat/completions"), 405)


def test_oversize_body_is_413(http, server):
    huge = "x" * (2 << 20)
    r = post(http, {"model": server.model, "messages": [{"role": "user", "content": huge}]})
    assert_openai_error(r, 413, code="request_too_large")

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 65536

    r = http.post("/v1/chat/completions", content=chunks())
    assert "content-length" not in r.request.headers
    assert_openai_error(r, 413, code="request_too_large")


def test_api_key_required(server, http):
    anonymous = httpx.Client(base_url=server.base_url)
    assert_openai_error(anonymous.get("/v1/models"), 401, code="invalid_api_key")
    assert_openai_error(anonymous.post("/v1/chat/completions", json={}), 401, code="invalid_api_key")
    assert_openai_error(anonymous.get("/metrics"), 401, code="invalid_api_key")
    assert anonymous.get("/health").status_code == 200  # probes need no key
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="wrong", max_retries=0).models.list()


def test_openai_client_sees_typed_errors(client, server):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nope", messages=MESSAGES)
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=server.model, messages=MESSAGES, n=2)
    assert e.value.param == "n"
