"""When the vLLM engine process dies the server says so (503) instead of hanging."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from tests.conftest import TEST_MODEL, start_server, stop_server

pytestmark = pytest.mark.engine


def test_health_is_503_after_the_engine_dies(tmp_path, server):  # `server` has pulled the model
    """Also: a stream that is running when the engine dies ends with an error event, then [DONE]."""
    proc, live = start_server(TEST_MODEL, tmp_path / "serve.log")
    try:
        body = {"model": TEST_MODEL, "stream": True, "max_tokens": 400, "temperature": 0,
                "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}]}
        with live.http() as h, h.stream("POST", "/v1/chat/completions", json=body) as r:
            lines = r.iter_lines()
            next(line for line in lines if '"content":"' in line and '"role"' not in line)
            cores = [p for p in psutil.Process(proc.pid).children(recursive=True)
                     if "EngineCore" in " ".join(p.cmdline())]
            assert cores, "no engine core process found"
            for p in cores:
                p.kill()
            events = [line[len("data: "):] for line in lines if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert json.loads(events[-2])["error"]["code"] == "engine_dead"
        with live.http() as h:
            deadline = time.monotonic() + 60
            while h.get("/health").status_code != 503 and time.monotonic() < deadline:
                time.sleep(0.5)
            r = h.get("/health")
            assert r.status_code == 503 and r.json()["error"]["code"] == "engine_dead"
            r = h.post("/v1/chat/completions", json={"model": TEST_MODEL, "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"
    finally:
        stop_server(proc)
