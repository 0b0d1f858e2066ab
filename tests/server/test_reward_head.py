"""`sla serve --reward-head`: the server starts with the reward model class and serves chat as before."""

from __future__ import annotations

import pytest

from tests.helpers.servers import start_server, stop_server
from tests.helpers.tiny_models import make_random_head, make_tiny_model

pytestmark = pytest.mark.engine


def test_server_with_a_reward_head_serves_chat(tmp_path):
    folder = make_tiny_model("qwen2", tmp_path / "tiny-qwen")
    head = make_random_head(folder, tmp_path / "head")
    proc, live = start_server(str(folder), tmp_path / "serve.log",
                              extra=("--reward-head", str(head), "--max-model-len", "1024", "--kv-cache-gib", "1"))
    try:
        client = live.client()
        messages = [{"role": "user", "content": "hello"}]
        r = client.chat.completions.create(model="tiny-qwen", messages=messages, max_tokens=8, temperature=0)
        assert r.usage.completion_tokens == 8 and r.choices[0].finish_reason == "length"
        chunks = list(client.chat.completions.create(model="tiny-qwen", messages=messages, max_tokens=8,
                                                     temperature=0, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == r.choices[0].message.content
        # Top-k logprobs are not offered: on a reward engine they would be corrupted (docs/background.md#vllm-032).
        with live.http() as h:
            bad = h.post("/v1/chat/completions", json={"model": "tiny-qwen", "messages": messages, "logprobs": True})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "logprobs"
        assert "SlaRewardQwen2ForCausalLM" in live.log.read_text()
    finally:
        stop_server(proc)
