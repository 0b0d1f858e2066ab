"""Graceful shutdown: SIGTERM while streams are in flight → no new connections; a stream admitted before the signal
runs to its end if it ends within the server's drain (DRAIN_S), one that does not is cut then; the process exits 0."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from server.app import DRAIN_S
from tests.helpers.servers import TEST_MODEL, start_server, stop_server

pytestmark = pytest.mark.engine


SHORT_S = 4.0  # how long a short stream runs alone: in flight at the signal, done well within the drain


def test_sigterm_lets_admitted_streams_finish_cuts_what_outlasts_the_drain_and_exits_0(tmp_path):
    # a long context, so that one stream outlasts the drain on a fast machine too (8,000 tokens at < 200 tok/s)
    proc, live = start_server(TEST_MODEL, tmp_path / "serve.log", extra=("--max-model-len", "8192"))
    try:
        def body(max_tokens: int, stream: bool = True) -> dict:
            return {"model": live.model, "stream": stream, "max_tokens": max_tokens, "ignore_eos": True,
                    "temperature": 0, "messages": [{"role": "user", "content": "Count to one thousand."}]}

        # the short streams' length from this machine's speed (48 fixed tokens ended before the signal on CI's)
        with live.http(timeout=120) as h:
            began = time.monotonic()
            assert h.post("/v1/chat/completions", json=body(128, stream=False)).status_code == 200
            per_second = 128 / (time.monotonic() - began)
        short_tokens = max(48, int(per_second * SHORT_S))
        assert per_second * (DRAIN_S + 15) < 8000, f"{per_second:.0f} tok/s: the endless stream would end in the drain"

        ended: dict[str, tuple[str, float]] = {}
        started = threading.Semaphore(0)

        def read(name: str, max_tokens: int) -> None:
            try:
                with live.http(timeout=120) as h, h.stream("POST", "/v1/chat/completions", json=body(max_tokens)) as r:
                    lines = []
                    for line in r.iter_lines():
                        if line.startswith("data:"):
                            if len(lines) == 1:
                                started.release()  # its first content delta: it was admitted and runs
                            lines.append(line)
                ended[name] = ("done" if lines and lines[-1] == "data: [DONE]" else "cut", time.monotonic())
            except httpx.HTTPError:
                ended[name] = ("cut", time.monotonic())

        readers = [threading.Thread(target=read, args=a) for a in
                   (("endless", 8000), ("short-1", short_tokens), ("short-2", short_tokens))]
        readers[0].start()  # the endless one first: the short ones are then the last to start
        assert started.acquire(timeout=120)
        for t in readers[1:]:
            t.start()
        for _ in readers[1:]:
            assert started.acquire(timeout=120)
        assert not ended
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DRAIN_S + 45) == 0
        for t in readers:
            t.join(timeout=60)
        assert ended["short-1"][0] == ended["short-2"][0] == "done"  # not cut by the stop
        assert ended["endless"][0] == "cut" and DRAIN_S - 1 < ended["endless"][1] - sent < DRAIN_S + 15
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{live.base_url}/health", timeout=5)
    finally:
        stop_server(proc)
