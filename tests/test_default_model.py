"""The README's promise: `make serve` + the README's curl streams an answer that names Paris."""

from __future__ import annotations

import json
import subprocess

import pytest

from sla_engine.store import DEFAULT_MODEL, ModelStore
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    ModelStore().pull(DEFAULT_MODEL)
    proc, live = start_server(DEFAULT_MODEL, tmp_path_factory.mktemp("default") / "serve.log")
    yield live
    assert stop_server(proc) == 0  # SIGTERM: a clean shutdown


def test_readme_curl_streams_paris(default_server):
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "stream": True}
    out = subprocess.run(
        ["curl", "-sN", f"{default_server.base_url}/v1/chat/completions", "-d", json.dumps(body)],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    events = [line[len("data: "):] for line in out.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert "Paris" in text
