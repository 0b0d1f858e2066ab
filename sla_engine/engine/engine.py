"""The engine: vLLM's AsyncLLM plus the chat template, request ids, warm-up and liveness.

Everything about one generation (prompt ids, sampling parameters) is decided by the caller; this class
only runs it and guarantees that an abandoned generation is aborted in the engine.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Sequence

from safetensors import safe_open
from vllm import SamplingParams
from vllm.inputs import tokens_input
from vllm.outputs import RequestOutput
from vllm.sampling_params import RequestOutputKind
from vllm.v1.engine.async_llm import AsyncLLM

from sla_engine.engine.config import EngineConfig
from sla_engine.engine.scheduler_probe import SchedulerCounts, SchedulerProbe
from sla_engine.reward.attach import reward_overrides
from sla_engine.reward.readout import RewardIds

log = logging.getLogger(__name__)


class PromptTooLongError(ValueError):
    """The prompt plus the requested completion does not fit in the model's context."""


@dataclass(frozen=True)
class ScoredCompletion:
    """Generated token ids, and for each the reward of the prefix ending at it."""

    token_ids: list[int]
    rewards: list[float]
    finish_reason: str | None
    num_cached_tokens: int  # prompt tokens served from the prefix cache


class Engine:
    def __init__(
        self, llm: AsyncLLM, config: EngineConfig, counts: SchedulerCounts, ready_s: float,
        reward: RewardIds | None = None,
    ):
        self.llm = llm
        self.config = config
        # Set on a reward engine: then *every* request reads the reward (so no batch ever mixes reward
        # read-outs with top-k logprobs, which vLLM 0.32 would corrupt; REFERENCE §6).
        self.reward = reward
        self.tokenizer = llm.get_tokenizer()
        self.scheduler_counts = counts
        self.ready_s = ready_s  # seconds from start() until ready, warm-up included
        # Model defaults from generation_config.json (temperature, top_p, ...), as vLLM's own server applies them.
        self.default_sampling = llm.model_config.get_diff_sampling_param()
        # The ids that end a generation, as vLLM gathers them (tokenizer EOS + generation_config eos_token_id).
        eos = llm.model_config.try_get_generation_config().get("eos_token_id")
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        self.eos_token_ids = frozenset(eos + ([self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []))

    @classmethod
    async def start(cls, config: EngineConfig) -> "Engine":
        t0 = time.perf_counter()
        counts = SchedulerCounts()
        overrides, reward = None, None
        if config.reward_head:  # validated here, before the engine starts
            overrides, reward = reward_overrides(Path(config.model_path), Path(config.reward_head))
        llm = AsyncLLM.from_engine_args(
            config.engine_args(overrides), stat_loggers=[lambda vllm_config, engine_index: SchedulerProbe(counts)]
        )
        engine = cls(llm, config, counts, ready_s=0.0, reward=reward)
        if config.warmup:
            await engine.warm_up()
        engine.ready_s = time.perf_counter() - t0
        log.info("engine ready in %.1f s (%s, reward head %s)", engine.ready_s, config.served_name,
                 config.reward_head or "none")
        return engine

    async def warm_up(self) -> None:
        """The first request after start pays a one-off cost; pay it before serving anybody."""
        ids = self.chat_prompt_ids([{"role": "user", "content": "Hello"}])
        async for _ in self.generate(ids, SamplingParams(max_tokens=8, temperature=0.0), "warmup"):
            pass

    @functools.cached_property
    def parameters(self) -> int:
        """The checkpoint's parameter count (from the safetensors headers; no weights are read)."""
        total = 0
        for file in sorted(Path(self.config.model_path).glob("*.safetensors")):
            with safe_open(file, framework="pt") as f:
                total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
        return total

    @property
    def max_model_len(self) -> int:
        return self.llm.model_config.max_model_len

    def chat_prompt_ids(self, messages: Sequence[dict]) -> list[int]:
        """Token ids of the chat prompt, rendered by the tokenizer's own chat template."""
        return list(
            self.tokenizer.apply_chat_template(
                list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )

    def check_fits(self, prompt_len: int, max_tokens: int | None) -> int:
        """The completion budget for a prompt: `max_tokens`, or what is left of the context if None."""
        room = self.max_model_len - prompt_len
        if room <= 0 or (max_tokens is not None and max_tokens > room):
            asked = f"{prompt_len} prompt tokens" + (f" + {max_tokens} completion tokens" if max_tokens else "")
            raise PromptTooLongError(
                f"This model's maximum context length is {self.max_model_len} tokens; you requested {asked}."
            )
        return room if max_tokens is None else max_tokens

    async def generate(
        self, prompt_ids: list[int], params: SamplingParams, request_id: str | None = None
    ) -> AsyncIterator[RequestOutput]:
        """Stream outputs for one request. Leaving the loop early (break, exception, cancellation) aborts it."""
        request_id = request_id or uuid.uuid4().hex
        if self.reward is not None:
            params = self.reward.apply(params.clone())
        finished = False
        async with aclosing(self.llm.generate(tokens_input(prompt_ids), params, request_id)) as gen:
            try:
                async for out in gen:
                    finished = out.finished
                    yield out
            finally:
                if not finished:
                    await self.llm.abort(request_id)

    async def generate_scored(
        self, prompt_ids: list[int], params: SamplingParams, request_id: str | None = None
    ) -> ScoredCompletion:
        """Generate, and return each token with the reward of the prefix ending at it (reward engines only).

        vLLM hands out, with token i, the reward of the prefix *before* it (readout.py); the last token's
        reward comes from one extra one-token request over the whole path, whose prefill the prefix cache
        serves except for the last partial block.
        """
        if self.reward is None:
            raise RuntimeError("this engine has no reward head")
        params = params.clone()
        params.output_kind = RequestOutputKind.DELTA
        params.detokenize = False  # branches are token paths; only committed text is ever detokenized
        ids: list[int] = []
        before: list[float] = []  # before[i]: reward of the prefix before token i
        finish, cached = None, 0
        async for out in self.generate(prompt_ids, params, request_id):
            c = out.outputs[0]
            ids += c.token_ids
            before += self.reward.rewards(c.logprobs)
            finish = c.finish_reason
            cached = out.num_cached_tokens or cached
        if not ids:
            return ScoredCompletion([], [], finish, cached)
        last = await self.score_prefix(prompt_ids + ids)
        return ScoredCompletion(ids, before[1:] + [last], finish, cached)

    async def score_prefix(self, token_ids: list[int]) -> float:
        """The reward of a whole token sequence (the prefix ending at its last token)."""
        params = SamplingParams(max_tokens=1, temperature=0.0, detokenize=False)
        async for out in self.generate(token_ids, params):
            pass
        return self.reward.rewards(out.outputs[0].logprobs)[0]

    @property
    def healthy(self) -> bool:
        return not self.llm.errored

    def num_unfinished_requests(self) -> int:
        """Requests the engine front end still tracks (aborted and finished ones are gone)."""
        return self.llm.get_num_unfinished_requests()

    def shutdown(self) -> None:
        self.llm.shutdown()
