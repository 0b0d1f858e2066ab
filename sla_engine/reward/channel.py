"""The reward channel and its head (docs/background.md#reward-transformer), computed in fp32 whatever the backbone's
dtype.

    t_0 = SiLU(W_0 · RMSNorm(h_0))                          h_0: the embedding output
    t_i = SiLU(W_i · RMSNorm([h_i ; t_{i-1}])) + t_{i-1}    h_i: the residual stream entering layer i
    r   = w · [RMSNorm_final(h_L) ; t_{L-1}] + b            one scalar per position

`head="final_hidden"` is the weaker ablation r = w · RMSNorm_final(h_L) + b (no channel).
No attention: the channel needs no KV cache, and the reward of the prefix ending at a token comes from
the same forward pass that produces the logits for the next token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

HeadKind = Literal["channel", "final_hidden"]


@dataclass(frozen=True)
class ChannelConfig:
    hidden_size: int
    num_layers: int
    width: int = 256
    head: HeadKind = "channel"
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(f"hidden_size and num_layers must be positive, got {self.hidden_size}, {self.num_layers}")
        if self.width < 1:
            raise ValueError(f"width must be positive, got {self.width}")
        if self.head not in ("channel", "final_hidden"):
            raise ValueError(f"head must be 'channel' or 'final_hidden', got {self.head!r}")


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x · rsqrt(mean(x²) + eps) · weight, as one fused op (fewer kernel launches per decode step)
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


class RewardChannel(nn.Module):
    def __init__(self, config: ChannelConfig):
        super().__init__()
        self.config = config
        h, c, layers = config.hidden_size, config.width, config.num_layers
        uses = config.head == "channel"
        self.norms = nn.ModuleList(
            [RMSNorm(h if i == 0 else h + c, config.eps) for i in range(layers)] if uses else []
        )
        self.projs = nn.ModuleList([nn.Linear(h if i == 0 else h + c, c) for i in range(layers)] if uses else [])
        self.head = nn.Linear(h + c if uses else h, 1)
        self.float()

    @property
    def uses_layers(self) -> bool:
        return self.config.head == "channel"

    def step(self, layer: int, stream: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        """Channel state after `layer`, from the residual stream entering it and the previous state."""
        x = stream.float()
        if layer == 0:
            return F.silu(self.projs[0](self.norms[0](x)))
        return F.silu(self.projs[layer](self.norms[layer](torch.cat([x, t], dim=-1)))) + t

    def score(self, final_normed: torch.Tensor, t_last: torch.Tensor | None) -> torch.Tensor:
        """One reward per position from the final normed hidden state (and the last channel state)."""
        x = final_normed.float()
        if self.uses_layers:
            x = torch.cat([x, t_last], dim=-1)
        return self.head(x).squeeze(-1)

    def forward(self, layer_inputs: Sequence[torch.Tensor], final_normed: torch.Tensor) -> torch.Tensor:
        """Rewards for every position; `layer_inputs[i]` is the residual stream entering layer i."""
        t = None
        if self.uses_layers:
            if len(layer_inputs) != self.config.num_layers:
                raise ValueError(f"expected {self.config.num_layers} layer inputs, got {len(layer_inputs)}")
            for i, stream in enumerate(layer_inputs):
                t = self.step(i, stream, t)
        return self.score(final_normed, t)
