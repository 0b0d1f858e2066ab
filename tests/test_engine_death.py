"""When the vLLM engine process dies the server says so (503) instead of hanging."""

from __future__ import annotations

import time

import psutil
import pytest

from tests.conftest import TEST_MODEL, start_server, stop_server

pytestmark = pytest.mark.engine


def test_health_is_503_after_the_engine_dies(tmp_path, server):  # `server` has pulled the model
    proc, live = start_server(TEST_MODEL, tmp_path / "serve.log")
    try:
        cores = [p for p in psutil.Process(proc.pid).children(recursive=True) if "EngineCore" in " ".join(p.cmdline())]
        assert cores, "no engine core process found"
        for p in cores:
            p.kill()
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
