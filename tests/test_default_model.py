"""The README's promise: `make serve` (the default model with its shipped reward head) + the README's curl
streams an answer that names Paris, and the shipped head serves SLA."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sla_engine.store import DEFAULT_MODEL, ModelStore
from tests.conftest import start_server, stop_server

SHIPPED_HEAD = Path(__file__).resolve().parents[1] / "heads" / DEFAULT_MODEL

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    ModelStore().pull(DEFAULT_MODEL)
    # what `make serve` runs (the Makefile adds --reward-head when heads/MODEL exists)
    proc, live = start_server(DEFAULT_MODEL, tmp_path_factory.mktemp("default") / "serve.log",
                              extra=("--reward-head", str(SHIPPED_HEAD)))
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


def test_make_serve_passes_the_shipped_head():
    # under `make test` the parent make's MAKEFLAGS/MAKELEVEL would add "Entering directory" lines
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    lines = subprocess.run(["make", "-n", "serve"], capture_output=True, text=True, check=True, env=env,
                           cwd=SHIPPED_HEAD.parents[1]).stdout.splitlines()
    serve = [line for line in lines if " serve " in line]
    assert len(serve) == 1 and f"--reward-head heads/{DEFAULT_MODEL}" in serve[0], lines


def test_the_shipped_head_serves_sla(default_server):
    client = default_server.client()
    r = client.chat.completions.create(
        model=DEFAULT_MODEL, max_tokens=40,
        messages=[{"role": "user", "content": "Tom has 12 apples and buys 30 more. How many apples does he have? "
                                              "Explain step by step."}], extra_body={"search": {"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}},
    )
    stats = r.search_stats
    assert r.choices[0].message.content and r.usage.completion_tokens > 20
    assert stats["strategy"] == "sla" and stats["branches_forked"] > 0 and stats["mean_reward"] is not None
