"""Real `sla serve` processes on real sockets for the tests, and what talks to them: starting and stopping a
server, the official `openai` client, /metrics, SSE lines, and the memory check before an engine starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from sla_engine.store import ModelStore

TEST_MODEL = "smollm2-135m-instruct"
API_KEY = "test-key"
START_TIMEOUT_S = 600  # a cold CPU start (imports + weights + warm-up) takes ~30 s; pulls take longer
# Every test engine gets a 0.5 GiB KV cache (11k tokens of the test model, more than a test keeps at once), so that
# the suite's engines together stay well under half of a 24 GiB machine; an engine needs about this much free
# memory to start (weights, KV cache, the worker process), and a start without it fails with a clear message.
TEST_KV_CACHE_GIB = 0.5
ENGINE_MEMORY_GIB = 3.0


def require_memory(gib: float = ENGINE_MEMORY_GIB) -> None:
    """Refuse to start one more engine when the machine lacks the memory for it: a clear failure instead of
    the kernel's OOM killer taking engines (and every test after) down one by one."""
    with open("/proc/meminfo") as fh:
        info = {line.split(":")[0]: int(line.split()[1]) for line in fh}
    available = info["MemAvailable"] / (1 << 20)
    if available < gib:
        pytest.fail(f"only {available:.1f} GiB of memory is available and a test engine needs about {gib} GiB: "
                    "is another vLLM process running on this machine (ps -ef | grep -i vllm)?", pytrace=False)


@dataclass
class LiveServer:
    base_url: str  # http://127.0.0.1:PORT
    model: str
    model_path: Path
    api_key: str | None
    log: Path

    def client(self, **kwargs) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=self.api_key or "none", max_retries=0, **kwargs)

    def http(self, timeout: float = 120) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def metric(self, name: str, absent: float | None = None, **labels: str) -> float:
        """One sample from /metrics: the sum over the samples of `name` that carry all of `labels`.

        With no such sample it fails, unless `absent` is given: a labelled series first appears with its
        first observation, so a count that may still be zero passes `absent=0.0`."""
        with self.http() as h:
            text = h.get("/metrics").text
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith(name) and line[len(name)] in " {" and all(w in line for w in wanted)]
        if not values and absent is not None:
            return absent
        assert values, f"{name} not in /metrics"
        return sum(values)


MAX_TOKENS_CAP = 3000  # the `server` fixture's; its context is 4096


def wait_for(predicate, timeout: float = 30.0) -> bool:
    """Polls `predicate` every 0.1 s until it holds or `timeout` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def engine_idle(live) -> bool:
    """No request in the engine (unfinished, running or waiting) and no search branch reserved."""
    return (live.metric("sla:engine_unfinished_requests") == 0 and live.metric("sla:engine_scheduler_running") == 0
            and live.metric("sla:engine_scheduler_waiting") == 0 and live.metric("sla:live_branches_reserved") == 0)


def open_streams(live, bodies: list[dict]):
    """One client per body, each POSTing it as a stream: (clients, stream contexts, responses with headers)."""
    clients = [live.http(timeout=600) for _ in bodies]
    streams = [c.stream("POST", "/v1/chat/completions", json=b) for c, b in zip(clients, bodies)]
    return clients, streams, [s.__enter__() for s in streams]


def first_content(lines) -> str:
    """The next line of an SSE stream's `lines` that carries generated text (not the role-only first delta)."""
    return next(line for line in lines if '"content":"' in line and '"role"' not in line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, log: Path, api_key: str | None = None,
                 extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, LiveServer]:
    require_memory()
    port = free_port()
    kv = () if "--kv-cache-gib" in extra else ("--kv-cache-gib", str(TEST_KV_CACHE_GIB))
    cmd = [sys.executable, "-m", "sla", "serve", "--model", model, "--port", str(port), *kv, *extra]
    if api_key:
        cmd += ["--api-key", api_key]
    fh = open(log, "w")
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    folder = Path(model)
    path = folder if folder.is_dir() else ModelStore().path(model)  # a model folder, or a packaged name
    server = LiveServer(f"http://127.0.0.1:{port}", folder.name, path, api_key, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sla serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200:
                return proc, server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"sla serve not healthy after {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def stop_server(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


SLA_SERVER_SEARCH = {"strategy": "sla", "width": 2, "chunk": 4, "depth": 1}  # its --search default
SLA_SERVER_BRANCH_CAP = 256
SLA_SERVER_MAX_REQUESTS = 60
