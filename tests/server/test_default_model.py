"""The README's promise: `make serve` (`sla serve` on the default model, which loads its shipped reward head)
+ the README's curl streams an answer that names Paris, the shipped head serves the README's recommended
search, `make serve HEAD=` serves another head, and the model's old name is still accepted."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess

import pytest

from sla_engine.store import ALIASES, DEFAULT_MODEL, ModelStore
from tests.helpers.paths import ROOT
from tests.helpers.servers import start_server, stop_server

REPO = ROOT
# the search setting the README recommends, as its Python example sends it (a Python dict literal)
README_SEARCH = ast.literal_eval(re.search(r'extra_body=\{"search": (\{.*?\})\}', (REPO / "README.md").read_text())[1])

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    ModelStore().pull(DEFAULT_MODEL)
    proc, live = start_server(DEFAULT_MODEL, tmp_path_factory.mktemp("default") / "serve.log")  # as `make serve`
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


def test_make_serve_runs_sla_serve_on_the_default_model():
    # under `make test` the parent make's MAKEFLAGS/MAKELEVEL would add "Entering directory" lines
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    lines = subprocess.run(["make", "-n", "serve", "PORT=8123"], capture_output=True, text=True, check=True,
                           env=env, cwd=REPO).stdout.splitlines()
    serve = [line for line in lines if " serve " in line]
    assert len(serve) == 1 and f"--model {DEFAULT_MODEL}" in serve[0] and "--port 8123" in serve[0], lines
    assert "--reward-head" not in serve[0]  # the shipped head, found by the model's name
    head = "heads/qwen2.5-coder-0.5b-instruct/bradley-terry"  # another head (heads/README.md)
    lines = subprocess.run(["make", "-n", "serve", f"HEAD={head}"], capture_output=True, text=True, check=True,
                           env=env, cwd=REPO).stdout.splitlines()
    assert any(f"--reward-head {head}" in line for line in lines), lines
    assert (REPO / head / "reward_head.json").is_file()


def test_the_shipped_head_is_loaded_without_being_named(default_server):
    assert f"reward head {REPO / 'heads' / DEFAULT_MODEL}" in default_server.log.read_text()


def test_the_old_model_name_is_still_accepted(default_server):
    old = next(name for name, new in ALIASES.items() if new == DEFAULT_MODEL)
    r = default_server.client().chat.completions.create(
        model=old, max_tokens=4, messages=[{"role": "user", "content": "Say hi."}])
    assert r.model == DEFAULT_MODEL and r.choices[0].message.content


def test_the_shipped_head_serves_the_readme_search(default_server):
    client = default_server.client()
    r = client.chat.completions.create(
        model=DEFAULT_MODEL, max_tokens=60,
        messages=[{"role": "user", "content": "Tom has 12 apples and buys 30 more. How many does he have?"}],
        extra_body={"search": README_SEARCH},
    )
    stats = r.search_stats
    assert r.choices[0].message.content and stats["tokens_emitted"] == r.usage.completion_tokens
    assert stats["strategy"] == README_SEARCH["strategy"] == "fork_rollouts"
    assert stats["score"] == README_SEARCH["score"]
    assert stats["forks"] == stats["branches_forked"] <= 4 and stats["mean_reward"] is not None
    assert stats["tokens_generated"] >= stats["tokens_emitted"]
