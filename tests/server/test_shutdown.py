"""Graceful shutdown: SIGTERM while streams are in flight → no new connections, every open stream ends
(finished, or closed by the server within its 30 s drain), and the process exits 0."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from tests.helpers.servers import TEST_MODEL, start_server, stop_server

pytestmark = pytest.mark.engine


def test_sigterm_ends_open_streams_refuses_new_connections_and_exits_0(tmp_path):
    proc, live = start_server(TEST_MODEL, tmp_path / "serve.log")
    try:
        body = {"model": live.model, "stream": True, "max_tokens": 1500, "ignore_eos": True, "temperature": 0,
                "messages": [{"role": "user", "content": "Count to one thousand."}]}
        ended: dict[int, tuple[str, float]] = {}

        def read(i: int) -> None:
            try:
                with live.http(timeout=120) as h, h.stream("POST", "/v1/chat/completions", json=body) as r:
                    lines = [line for line in r.iter_lines() if line.startswith("data:")]
                ended[i] = ("done" if lines and lines[-1] == "data: [DONE]" else "cut", time.monotonic())
            except httpx.HTTPError:
                ended[i] = ("cut", time.monotonic())

        readers = [threading.Thread(target=read, args=(i,)) for i in range(3)]
        for t in readers:
            t.start()
        time.sleep(3)  # all three are streaming
        assert not ended
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        for t in readers:
            t.join(timeout=60)
        assert len(ended) == 3 and all(at - sent < 45 for _, at in ended.values())
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{live.base_url}/health", timeout=5)
    finally:
        stop_server(proc)
