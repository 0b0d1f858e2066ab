"""Whether an engine step needs the reward: the channel and the reserved columns are computed only
when some request in the batch reads them, so plain decoding on a head-loaded engine pays for neither.

vLLM 0.32 tells a model nothing about the requests in its batch, but it tells every custom logits processor
each change of the batch (requests added, removed, moved) before the step's forward pass
(`InputBatch.refresh_metadata`, from the model runner's `_update_states`). `RewardGate` is such a processor
that leaves the logits alone: it keeps the batch rows whose request asks for the reserved columns
(`logprob_token_ids`, columns.py), and the reward model class (vllm_models.py) asks `REWARD_ROWS` whether any
row does. Both live in the worker process of one engine core (one model per process); `Engine` registers the
gate on reward engines (config.py). Without a gate, every step reads out (the safe default).
"""

from __future__ import annotations

import torch
from vllm import SamplingParams
from vllm.config import VllmConfig
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

GATE = "sla_engine.reward.gate:RewardGate"  # how EngineArgs.logits_processors names it
EXTENSION = "sla_engine.reward.gate.ChannelSteps"  # how EngineArgs.worker_extension_cls names it


class RewardRows:
    """The batch rows that read the reward columns, as the gate last saw them."""

    def __init__(self) -> None:
        self.rows: dict[int, bool] = {}
        self.gated = False  # True once a gate is installed in this process
        self.steps = 0  # forward passes that ran the channel (what tests read back from the worker)

    def needed(self) -> bool:
        return not self.gated or bool(self.rows)


REWARD_ROWS = RewardRows()


def wants_rewards(params: SamplingParams, prompt_ids: list[int] | None, output_ids: list[int]) -> bool | None:
    return True if params.logprob_token_ids else None


class RewardGate(LogitsProcessor):
    def __init__(self, vllm_config: VllmConfig, device: torch.device, is_pin_memory: bool):
        REWARD_ROWS.rows.clear()
        REWARD_ROWS.gated = True

    def is_argmax_invariant(self) -> bool:
        return True  # it changes no logits

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(REWARD_ROWS.rows, batch_update, wants_rewards)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


class ChannelSteps:
    """Mixed into vLLM's worker class on reward engines (`worker_extension_cls`, vLLM's way to add
    `collective_rpc` calls), so the engine's owner can ask the worker process what the model computed."""

    def sla_channel_steps(self) -> int:
        return REWARD_ROWS.steps
