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
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from pathlib import Path

from safetensors import safe_open
from vllm import SamplingParams
from vllm.inputs import tokens_input
from vllm.outputs import RequestOutput
from vllm.v1.engine.async_llm import AsyncLLM

from sla_engine.engine.config import EngineConfig
from sla_engine.engine.scheduler_probe import SchedulerCounts, SchedulerProbe
from sla_engine.reward.attach import reward_overrides
from sla_engine.reward.columns import RewardIds

log = logging.getLogger(__name__)


class PromptTooLongError(ValueError):
    """The prompt plus the requested completion does not fit in the model's context."""


class Engine:
    def __init__(
        self, llm: AsyncLLM, config: EngineConfig, counts: SchedulerCounts, ready_s: float,
        reward: RewardIds | None = None, readout: str | None = None,
    ):
        self.llm = llm
        self.config = config
        # Set on a reward engine: then *every* request reads the reward (so no batch ever mixes reward
        # columns with top-k logprobs, which vLLM 0.32 would corrupt; docs/background.md#vllm-032).
        self.reward = reward
        # How the head scores a path ("mean" or "last", reward/weights.py); None without a head.
        self.readout = readout
        self.tokenizer = llm.get_tokenizer()
        self.scheduler_counts = counts
        self.ready_s = ready_s  # seconds from start() until ready, warm-up included
        # Model defaults from generation_config.json (temperature, top_p, ...), as vLLM's own server applies them.
        self.default_sampling = llm.model_config.get_diff_sampling_param()
        # The ids that end a generation, as vLLM gathers them (tokenizer EOS + generation_config eos_token_id).
        eos = llm.model_config.try_get_generation_config().get("eos_token_id")
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        self._containing: dict[str, tuple[int, ...]] = {}
        own = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        self.eos_token_ids = frozenset(eos + own)

    @classmethod
    async def start(cls, config: EngineConfig) -> Engine:
        t0 = time.perf_counter()
        counts = SchedulerCounts()
        overrides, reward, readout = None, None, None
        if config.reward_head:  # validated here, before the engine starts
            overrides, reward, readout = reward_overrides(Path(config.model_path), Path(config.reward_head))
        llm = AsyncLLM.from_engine_args(
            config.engine_args(overrides), stat_loggers=[lambda vllm_config, engine_index: SchedulerProbe(counts)]
        )
        engine = cls(llm, config, counts, ready_s=0.0, reward=reward, readout=readout)
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

    @functools.cached_property
    def token_texts(self) -> tuple[str, ...]:
        """The text of every token id (special tokens included). Decoding the vocabulary takes seconds: a
        server that needs it computes it at start-up, off the event loop (startup.py)."""
        tok = self.tokenizer
        return tuple(tok.batch_decode([[i] for i in range(len(tok))], skip_special_tokens=False))

    def ids_containing(self, text: str) -> tuple[int, ...]:
        """The token ids whose text contains `text` (computed once per text)."""
        if text not in self._containing:
            self._containing[text] = tuple(i for i, t in enumerate(self.token_texts) if text in t)
        return self._containing[text]

    def same_tokenizer(self, other: Engine) -> bool:
        """Whether token ids mean the same text in both engines (what handing ids between them needs)."""
        return self.tokenizer.get_vocab() == other.tokenizer.get_vocab()

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
        self, prompt_ids: list[int], params: SamplingParams, request_id: str | None = None, read_rewards: bool = True,
    ) -> AsyncIterator[RequestOutput]:
        """Stream outputs for one request. Leaving the loop early (break, exception, cancellation) aborts it.
        On a reward engine the request reads the reward and fork columns unless `read_rewards` is False (plain
        decoding, which needs none of them)."""
        request_id = request_id or uuid.uuid4().hex
        if self.reward is not None:
            params = self.reward.apply(params.clone(), read_rewards)
        finished = False
        async with aclosing(self.llm.generate(tokens_input(prompt_ids), params, request_id)) as gen:
            try:
                async for out in gen:
                    finished = out.finished
                    yield out
            finally:
                if not finished:
                    await self.llm.abort(request_id)

    async def channel_steps(self) -> int:
        """How many forward passes so far ran the reward channel, read from the engine's worker process (a step
        whose requests read no reward skips it: reward/gate.py). 0 on an engine without a head."""
        if self.reward is None:
            return 0
        [steps] = await self.llm.collective_rpc("sla_channel_steps")  # reward/gate.py's ChannelSteps
        return steps

    @property
    def healthy(self) -> bool:
        return not self.llm.errored

    def num_unfinished_requests(self) -> int:
        """Requests the engine front end still tracks (aborted and finished ones are gone)."""
        return self.llm.get_num_unfinished_requests()

    def shutdown(self) -> None:
        self.llm.shutdown()
