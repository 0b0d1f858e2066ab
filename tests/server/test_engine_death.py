"""When the vLLM engine process dies the server says so to the streams it is serving, then exits non-zero,
as vLLM's own server does, so that its supervisor (Compose's `restart:`, Kubernetes) starts a fresh one."""

from __future__ import annotations

import json

import psutil
import pytest

from sla_engine.store import ModelStore
from tests.helpers.servers import TEST_MODEL, first_content, start_server

pytestmark = pytest.mark.engine


def test_the_server_exits_non_zero_after_the_engine_dies(tmp_path):
    """A stream that is running when the engine dies ends with an error event, then [DONE]; the server stops
    with exit code 1 and says why."""
    ModelStore().pull(TEST_MODEL)
    proc, live = start_server(TEST_MODEL, tmp_path / "serve.log")
    try:
        body = {"model": TEST_MODEL, "stream": True, "max_tokens": 400, "temperature": 0,
                "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}]}
        with live.http() as h, h.stream("POST", "/v1/chat/completions", json=body) as r:
            lines = r.iter_lines()
            first_content(lines)
            cores = [p for p in psutil.Process(proc.pid).children(recursive=True)
                     if "EngineCore" in " ".join(p.cmdline())]
            assert cores, "no engine core process found"
            for p in cores:
                p.kill()
            events = [line[len("data: "):] for line in lines if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert json.loads(events[-2])["error"]["code"] == "engine_dead"
        assert proc.wait(timeout=120) == 1
        assert "the vLLM engine died" in live.log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
