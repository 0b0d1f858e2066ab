"""Losses on token rewards of chosen / rejected responses (docs/background.md#reward-transformer).

Inputs are padded [B, T] reward and mask tensors (mask 1 on response tokens).

    seqwise_bt     −log σ(mean_t r(chosen) − mean_t r(rejected))          the paper's default
    tokenwise_bt   −log σ(r_t(chosen) − r_t(rejected)), averaged over positions both responses have
    cross_entropy  σ(r_t) → 1 on chosen tokens, → 0 on rejected tokens
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sla_pipeline.training.config import LossKind


def masked_mean(r: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (r * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def pair_loss(kind: LossKind, rc: torch.Tensor, mc: torch.Tensor, rr: torch.Tensor, mr: torch.Tensor) -> torch.Tensor:
    if kind == "seqwise_bt":
        return -F.logsigmoid(masked_mean(rc, mc) - masked_mean(rr, mr)).mean()
    if kind == "tokenwise_bt":
        t = min(rc.shape[1], rr.shape[1])
        both = mc[:, :t] * mr[:, :t]
        return (-F.logsigmoid(rc[:, :t] - rr[:, :t]) * both).sum() / both.sum().clamp(min=1)
    if kind == "cross_entropy":
        chosen = F.binary_cross_entropy_with_logits(rc, torch.ones_like(rc), weight=mc, reduction="sum")
        rejected = F.binary_cross_entropy_with_logits(rr, torch.zeros_like(rr), weight=mr, reduction="sum")
        return (chosen + rejected) / (mc.sum() + mr.sum()).clamp(min=1)
    raise ValueError(f"unknown loss {kind!r}")
