"""End to end through a real socket with the official `openai` client: stream and non-stream chat completions."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

pytestmark = pytest.mark.engine

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tokenizer(server):
    return AutoTokenizer.from_pretrained(server.model_path)


def prompt_len(tokenizer, messages) -> int:
    return len(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))


def test_non_stream_shape_and_usage(client, server, tokenizer):
    r = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=40)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == server.model
    assert len(r.choices) == 1 and r.choices[0].message.role == "assistant"
    assert "Paris" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == prompt_len(tokenizer, QUESTION)
    assert 0 < r.usage.completion_tokens < 40
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_stream_chunk_order_shapes_and_usage(client, server):
    stream = client.chat.completions.create(
        model=server.model, messages=QUESTION, temperature=0, max_tokens=40, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.content and c.choices[0].finish_reason is None for c in middle)
    assert finish.choices[0].finish_reason == "stop" and not finish.choices[0].delta.content
    assert usage.choices == [] and usage.usage is not None
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)

    text = "".join(c.choices[0].delta.content for c in middle)
    plain = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=40)
    assert text == plain.choices[0].message.content  # greedy: stream and non-stream agree
    assert usage.usage.model_dump() == plain.usage.model_dump()


def test_stream_ends_with_done_on_the_wire(server):
    body = {"model": server.model, "messages": QUESTION, "max_tokens": 5, "stream": True}
    with server.http() as h, h.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    payloads = [json.loads(e) for e in events[:-1]]
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"][0]["finish_reason"] == "length"  # no usage chunk without include_usage


def test_max_tokens_gives_length(client, server):
    r = client.chat.completions.create(model=server.model, messages=QUESTION, max_tokens=3, temperature=0)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3
    r = client.chat.completions.create(model=server.model, messages=QUESTION, max_completion_tokens=2, temperature=0)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 2


def test_ignore_eos_runs_to_max_tokens(client, server):
    """vLLM's `ignore_eos` extension (what `vllm bench serve` sends for fixed-length outputs)."""
    short = client.chat.completions.create(model=server.model, messages=QUESTION, max_tokens=60, temperature=0)
    assert short.choices[0].finish_reason == "stop" and short.usage.completion_tokens < 60
    long = client.chat.completions.create(model=server.model, messages=QUESTION, max_tokens=60, temperature=0,
                                          extra_body={"ignore_eos": True})
    assert long.choices[0].finish_reason == "length" and long.usage.completion_tokens == 60


def test_stop_sequence_is_honoured(client, server):
    free = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=40)
    text = free.choices[0].message.content
    stop = "Paris"
    assert stop in text
    r = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=40, stop=[stop])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == text[: text.index(stop)]


def test_same_seed_same_text(client, server):
    story = [{"role": "user", "content": "Write one sentence about a cat."}]

    def sample(seed: int) -> str:
        r = client.chat.completions.create(model=server.model, messages=story, temperature=1.0, seed=seed,
                                           max_tokens=24)
        return r.choices[0].message.content

    a, b = sample(1234), sample(1234)
    assert a == b
    assert len({sample(s) for s in (1, 2, 3)}) > 1  # temperature 1 really samples


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == [server.model]
    with server.http() as h:
        assert h.get("/health").json() == {"status": "ok"}
        text = h.get("/metrics").text
    assert "vllm:num_requests_running" in text and "sla:http_requests_total" in text


def test_streams_are_timed_into_ttft_tpot_and_delta_gap_histograms(client, server):
    def counts() -> tuple[float, float, float]:
        return tuple(server.metric(f"sla:{name}_count", strategy="sample")
                     for name in ("time_to_first_token_seconds", "time_per_output_token_seconds",
                                  "stream_delta_gap_seconds"))

    before = counts()
    stream = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=12,
                                            stream=True)
    deltas = sum(1 for c in stream if c.choices and c.choices[0].delta.content)
    ttft, tpot, gaps = (a - b for a, b in zip(counts(), before))
    assert deltas > 1
    assert (ttft, tpot, gaps) == (1, 1, deltas - 1)
    client.chat.completions.create(model=server.model, messages=QUESTION, max_tokens=4)  # not a stream: not timed
    assert counts()[0] == before[0] + 1
