"""The fp32 reference the serving path is tested against: a frozen transformers backbone plus the same
RewardChannel module that vLLM runs (sla_engine/reward/vllm_models.py), computed the slow, obvious way."""

from __future__ import annotations

import torch

from sla_engine.reward.channel import RewardChannel


def layer_inputs_and_final(backbone, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
                           ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The residual stream entering each decoder layer, and the final normed hidden state.

    transformers' `hidden_states` holds the embeddings, then each layer's output; its last entry is the
    final norm applied to the last layer's output, so entries 0..L-1 are exactly the layers' inputs.
    """
    out = backbone.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    states = out.hidden_states
    return list(states[:-1]), states[-1]


@torch.no_grad()
def reference_rewards(backbone, channel: RewardChannel, token_ids: list[int]) -> torch.Tensor:
    """Reward of every prefix of `token_ids`: entry j scores the prefix ending at token j (fp32)."""
    ids = torch.tensor([token_ids])
    layers, final = layer_inputs_and_final(backbone, ids)
    return channel(layers, final)[0]
