"""Shared fixtures: real `sla serve` processes on real sockets (tests/helpers/servers.py), the official
`openai` client, and in-process engines with tiny models (tests/helpers/engine_thread.py).

A server (and its vLLM engine) is started once per test module that uses it and shared by that module's
tests (marked `engine`; `make test-fast` skips those); one per module rather than per session keeps the
suite's engines few at any time: every engine is ~3 GB of processes, whatever its model.
"""

from __future__ import annotations

import json

import openai
import pytest

from sla_engine.engine import Engine, EngineConfig
from sla_engine.store import ModelStore
from tests.helpers.engine_thread import tiny_searchable
from tests.helpers.servers import (
    API_KEY,
    MAX_TOKENS_CAP,
    SLA_SERVER_BRANCH_CAP,
    SLA_SERVER_MAX_REQUESTS,
    SLA_SERVER_SEARCH,
    TEST_MODEL,
    LiveServer,
    start_server,
    stop_server,
)
from tests.helpers.tiny_models import make_random_head, make_tiny_model


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> LiveServer:
    """`sla serve` on the small test model, with an API key and a max_tokens cap, shared by a module's tests."""
    ModelStore().pull(TEST_MODEL)
    proc, live = start_server(TEST_MODEL, tmp_path_factory.mktemp("server") / "serve.log", api_key=API_KEY,
                              extra=("--max-tokens-cap", str(MAX_TOKENS_CAP)))
    yield live
    stop_server(proc)


@pytest.fixture(scope="module")
def sla_server(tmp_path_factory) -> LiveServer:
    """`sla serve` on the small test model with a random reward head (no API key), a default search, small
    admission caps, and the same model again as the `rsd` target engine; shared by the search API, load and
    storm tests."""
    folder = ModelStore().pull(TEST_MODEL)
    tmp = tmp_path_factory.mktemp("sla-server")
    head = make_random_head(folder, tmp / "head", seed=2)
    proc, live = start_server(TEST_MODEL, tmp / "serve.log", extra=(
        "--reward-head", str(head), "--search", json.dumps(SLA_SERVER_SEARCH),
        "--max-live-branches", str(SLA_SERVER_BRANCH_CAP), "--max-concurrent-requests", str(SLA_SERVER_MAX_REQUESTS),
        "--max-model-len", "2048", "--target-model", TEST_MODEL,
    ))
    yield live
    stop_server(proc)


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory):
    """`tests.helpers.engine_thread.tiny_searchable` shared by a module's tests: (engine thread, fp32 reference,
    folder)."""
    with tiny_searchable(tmp_path_factory) as s:
        yield s


@pytest.fixture
def client(server: LiveServer) -> openai.OpenAI:
    return server.client()


@pytest.fixture(scope="module")
def target(tiny_search, tmp_path_factory):
    """A second tiny model with the same tokenizer and other weights, the `rsd` target: a second engine on
    the draft's event loop, as the server runs the two."""
    runner = tiny_search[0]
    folder = make_tiny_model("llama", tmp_path_factory.mktemp("tiny-target"), seed=2)
    engine = runner.run(Engine.start(EngineConfig(model_path=str(folder), served_name="target", max_model_len=1024,
                                                  kv_cache_gib=0.5, warmup=False)))
    yield engine
    engine.shutdown()
