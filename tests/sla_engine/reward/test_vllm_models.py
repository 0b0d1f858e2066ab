"""The reward channel inside vLLM: per-token rewards equal an fp32 transformers reference, greedy decoding
is unchanged by loading a head, and the reserved ids are never sampled."""

from __future__ import annotations

import asyncio

import pytest
import torch
from transformers import AutoModelForCausalLM
from vllm import SamplingParams

from sla_engine.engine import EngineConfig
from sla_engine.reward import RewardHead
from sla_engine.search import complete
from tests.helpers.engine_thread import EngineThread
from tests.helpers.reference import reference_rewards
from tests.helpers.tiny_models import make_random_head, make_tiny_model

pytestmark = pytest.mark.engine

SHARED = list(range(1000, 1300))  # 300 prompt tokens shared by all requests: two full 128-token KV blocks
PROMPTS = [SHARED + [2000 + i, 3000 + 7 * i, 4000 + i] for i in range(4)]


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def tiny(request, tmp_path_factory):
    folder = make_tiny_model(request.param, tmp_path_factory.mktemp(f"tiny-{request.param}"))
    head = make_random_head(folder, folder / "head")
    runner = EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", reward_head=str(head),
                                       max_model_len=1024, kv_cache_gib=0.5, warmup=False))
    yield request.param, folder, head, runner
    runner.close()


def greedy(n: int) -> SamplingParams:
    return SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True, detokenize=False)


def scored_batch(runner: EngineThread, prompts, n: int = 20):
    async def all_at_once():
        return await asyncio.gather(*(complete(runner.engine, p, greedy(n)) for p in prompts))

    return runner.run(all_at_once())


def test_rewards_match_the_fp32_reference_in_a_batch_and_from_the_prefix_cache(tiny):
    family, folder, head, runner = tiny
    backbone = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    channel = RewardHead.load(head).channel().eval()
    for round_ in range(2):  # round 2 hits the prefix cache for every prompt
        results = scored_batch(runner, PROMPTS)
        for prompt, res in zip(PROMPTS, results):
            assert len(res.tokens) == len(res.rewards) == 20
            ref = reference_rewards(backbone, channel, prompt + res.tokens)[len(prompt):]
            got = torch.tensor(res.rewards)
            assert ref.std() > 100 * 1e-4, "rewards must vary well beyond the tolerance for the check to mean anything"
            assert (got - ref).abs().max().item() <= 1e-4, (family, round_, (got - ref).abs().max().item())
            # the reference's tokens are the engine's: vLLM's greedy choice is the backbone's argmax
            logits = backbone(torch.tensor([prompt + res.tokens])).logits[0, len(prompt) - 1:-1]
            assert logits.argmax(-1).tolist() == res.tokens
        if round_ == 1:
            assert all(r.cached_tokens >= 256 for r in results)


def test_greedy_tokens_identical_with_and_without_a_head(tiny):
    family, folder, head, runner = tiny
    with_head = [r.tokens for r in scored_batch(runner, PROMPTS[:2], n=24)]
    plain = EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", max_model_len=1024,
                                      kv_cache_gib=0.5, warmup=False))
    try:
        async def run(p):
            async for out in plain.engine.generate(p, greedy(24)):
                pass
            return list(out.outputs[0].token_ids)

        without = [plain.run(run(p)) for p in PROMPTS[:2]]
    finally:
        plain.close()
    assert with_head == without


def test_a_plain_request_on_a_head_loaded_engine_reads_nothing_out(tiny):
    """Plain decoding (the server's requests without a search) asks the engine for no read-out: no logprob
    entries come back, the tokens are the same as a reading request's, and the reserved ids stay unsampled."""
    family, folder, head, runner = tiny

    async def run(read_rewards: bool):
        async for out in runner.engine.generate(PROMPTS[0], greedy(12), read_rewards=read_rewards):
            pass
        return out.outputs[0]

    steps = runner.engine.channel_steps
    before = runner.run(steps())
    plain = runner.run(run(False))
    after_plain = runner.run(steps())
    reading = runner.run(run(True))
    after_reading = runner.run(steps())
    assert plain.logprobs is None and len(reading.logprobs) == 12
    assert set(runner.engine.reward.columns) <= set(reading.logprobs[0])  # (the sampled token comes along)
    assert list(plain.token_ids) == list(reading.token_ids)
    # what the engine computed: no forward pass of the plain request ran the channel; every one of the reading
    # request's did (its prefill and 11 decode steps)
    assert after_plain == before and after_reading - after_plain >= 12

    async def mixed():  # a batch with one reading row among plain ones computes the reward for it
        return await asyncio.gather(run(False), run(True), run(False))

    first, read, last = runner.run(mixed())
    rewards = runner.engine.reward.rewards
    assert first.logprobs is None and last.logprobs is None
    assert rewards(read.logprobs) == pytest.approx(rewards(reading.logprobs), abs=1e-4)


def test_reserved_ids_are_never_sampled_even_at_temperature_2(tiny, tmp_path):
    family, folder, head, runner = tiny
    ids = runner.engine.reward
    hot = SamplingParams(max_tokens=150, temperature=2.0, ignore_eos=True, detokenize=False, seed=3)

    async def sample(p, read_rewards):
        async for out in runner.engine.generate(p, hot.clone(), read_rewards=read_rewards):
            pass
        return out.outputs[0].token_ids

    tokens = [t for p in PROMPTS for read_rewards in (True, False) for t in runner.run(sample(p, read_rewards))]
    assert len(set(tokens)) > 100  # really sampling across the vocabulary
    assert not set(ids.columns) & set(tokens)


def test_a_large_reward_is_still_read_exactly_and_never_sampled(tmp_path):
    """A head whose rewards sit near +150: the reward logit is then r − 100 ≈ +50, above every real token,
    so without the logit-bias suppression R would be sampled at almost every step."""
    folder = make_tiny_model("llama", tmp_path / "m")
    head = make_random_head(folder, tmp_path / "h", head_bias=150.0)
    runner = EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", reward_head=str(head),
                                       max_model_len=1024, kv_cache_gib=0.5, warmup=False))
    try:
        res = scored_batch(runner, PROMPTS[:1], n=30)[0]
        assert not set(runner.engine.reward.columns) & set(res.tokens)
        backbone = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        ref = reference_rewards(backbone, RewardHead.load(head).channel().eval(), PROMPTS[0] + res.tokens)
        got = torch.tensor(res.rewards)
        assert got.min() > 100
        assert (got - ref[len(PROMPTS[0]):]).abs().max().item() <= 1e-4
    finally:
        runner.close()


def test_final_hidden_only_head_matches_its_reference(tmp_path):
    folder = make_tiny_model("llama", tmp_path / "m")
    head = make_random_head(folder, tmp_path / "h", kind="final_hidden")
    runner = EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", reward_head=str(head),
                                       max_model_len=1024, kv_cache_gib=0.5, warmup=False))
    try:
        res = scored_batch(runner, PROMPTS[:2], n=12)
        backbone = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        channel = RewardHead.load(head).channel().eval()
        for prompt, r in zip(PROMPTS, res):
            ref = reference_rewards(backbone, channel, prompt + r.tokens)[len(prompt):]
            assert (torch.tensor(r.rewards) - ref).abs().max().item() <= 1e-4
    finally:
        runner.close()
