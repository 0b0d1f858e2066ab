"""vLLM model classes with the reward channel: Qwen2 (`qwen2.5-*`) and Llama (`smollm2-135m-instruct`).

They run the decoder stack themselves so that the channel sees every layer's residual stream (in vLLM's
fused-norm layers the stream entering layer i is `hidden + residual`, not the layer's MLP output), and hand
the final channel state to `compute_logits` by widening the returned hidden states: the fp32 channel state is
*bit-cast* to the model dtype and concatenated, so nothing is rounded on the way. `compute_logits` splits
it off, scores it with the head in fp32, and writes the reward into the reserved columns (columns.py).

Selected only when a reward head is loaded: `Engine` points `hf_overrides.architectures` at these classes and
passes the head in `hf_overrides.sla_reward`. A step whose batch has no request that reads the reward columns
(plain decoding) runs neither the channel nor the reserved columns (gate.py), except while a CUDA graph is
captured, whose replays must serve every batch. Limits: one pipeline stage and one tensor-parallel rank; the
decoder loop runs eagerly (vLLM does not compile it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from vllm.config import CUDAGraphMode, VllmConfig
from vllm.forward_context import get_forward_context, is_forward_context_available
from vllm.model_executor.models.llama import LlamaForCausalLM
from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM

from sla_engine.reward.columns import FORK_COLUMNS, FORK_OFFSET, OFFSET, RewardIds
from sla_engine.reward.gate import REWARD_ROWS
from sla_engine.reward.plugin import REWARD_CONFIG_KEY
from sla_engine.reward.weights import RewardHead


def channel_needed() -> bool:
    """Whether this step computes the reward: some request in the batch reads it, or a graph is captured."""
    captured = is_forward_context_available() and get_forward_context().cudagraph_runtime_mode != CUDAGraphMode.NONE
    return captured or REWARD_ROWS.needed()


class RewardChannelMixin:
    """Mixed into a vLLM *ForCausalLM whose `.model` has `embed_input_ids`, `layers` and `norm`."""

    def _init_reward(self, vllm_config: VllmConfig) -> None:
        spec = getattr(vllm_config.model_config.hf_config, REWARD_CONFIG_KEY)
        parallel = vllm_config.parallel_config
        if parallel.pipeline_parallel_size != 1 or parallel.tensor_parallel_size != 1:
            raise ValueError("the reward channel supports one pipeline stage and one tensor-parallel rank")
        self.reward_ids = RewardIds.from_dict(spec["ids"])
        self.reward_channel = RewardHead.load(Path(spec["head"])).channel()

    def forward(self, input_ids, positions, intermediate_tensors=None, inputs_embeds=None, **kwargs):
        m = self.model
        hidden = m.embed_input_ids(input_ids) if inputs_embeds is None else inputs_embeds
        residual, t = None, None
        channel = self.reward_channel
        run_channel = channel.uses_layers and channel_needed()
        REWARD_ROWS.steps += run_channel
        for i, layer in enumerate(m.layers):
            if run_channel:
                t = channel.step(i, hidden if residual is None else hidden + residual, t)
            hidden, residual = layer(positions, hidden, residual)
        hidden, _ = m.norm(hidden, residual)
        if t is None:
            return hidden
        return torch.cat([hidden, t.contiguous().view(hidden.dtype)], dim=-1)

    def _split(self, wide: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden_size = self.config.hidden_size
        if wide.shape[-1] == hidden_size:  # no channel state: a head without it, or a step that reads nothing
            return wide, None
        return wide[:, :hidden_size], wide[:, hidden_size:].contiguous().view(torch.float32)

    def _with_reward(self, hidden: torch.Tensor, t: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
        if (self.reward_channel.uses_layers and t is None) or not channel_needed():
            return logits  # nobody reads the reserved columns; their logit bias keeps them from being sampled
        ids = self.reward_ids
        logits = logits.float()
        tokens = logits[:, : ids.token_vocab]
        top = tokens.topk(FORK_COLUMNS, dim=-1, sorted=True).indices
        log_p = tokens.log_softmax(dim=-1)
        entropy = -(log_p.exp() * log_p).sum(dim=-1)
        logits[:, ids.reward] = self.reward_channel.score(hidden, t) + OFFSET
        logits[:, ids.zero] = OFFSET
        logits[:, ids.entropy] = entropy + OFFSET
        logits[:, ids.fork[0] : ids.fork[-1] + 1] = FORK_OFFSET - top.float()
        logits[:, ids.fork_logprob[0] : ids.fork_logprob[-1] + 1] = log_p.gather(1, top) + OFFSET
        return logits

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        hidden, t = self._split(hidden_states)
        return self._with_reward(hidden, t, self.logits_processor(self.lm_head, hidden))

    def compute_logits_local(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # Model Runner V2's batch-sharded sampling calls this; with one TP rank it is the full vocabulary.
        hidden, t = self._split(hidden_states)
        return self._with_reward(hidden, t, self.logits_processor(self.lm_head, hidden, skip_gather=True))

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """The base checkpoint, with `added_rows` zero rows appended to the vocabulary matrices (the config's
        vocab_size already counts them); the channel was loaded from its own file at construction."""
        added = self.reward_ids.added_rows

        def padded():
            for name, w in weights:
                if added and name.endswith(("embed_tokens.weight", "lm_head.weight")):
                    w = torch.cat([w, w.new_zeros(added, w.shape[1])])
                yield name, w

        loaded = super().load_weights(padded())
        return loaded | {f"reward_channel.{name}" for name, _ in self.reward_channel.named_parameters()}


class SlaRewardQwen2ForCausalLM(RewardChannelMixin, Qwen2ForCausalLM):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        self._init_reward(vllm_config)


class SlaRewardLlamaForCausalLM(RewardChannelMixin, LlamaForCausalLM):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = ""):
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        self._init_reward(vllm_config)
