"""Reward calibration: standardized units for every threshold a search compares rewards against.

A Bradley–Terry head is only defined up to a shift (the loss sees reward differences), and its scale is
wherever training stopped: heads/MODEL/bradley-terry's raw mean token reward on the policy's own GSM answers
was about −5; a value head's unit is the log-odds of a right answer. Absolute thresholds (CARDS τ, RSD δ,
best-of-N's early-stop score) would then be head-specific.

So a head is calibrated once, after training: the per-token reward's mean μ and standard deviation σ over
the policy's own training answers are measured, and r ↦ (r − μ) / σ is folded into the head's last linear
layer. The served reward is then in standard deviations of the policy's typical token reward (0 = an
average token of its own answers), with no run-time cost, and the same in vLLM and in training.
Rankings (SLA, best-of-N, pair accuracy, AuTRC) are unchanged by a positive affine map.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from sla_engine.reward.channel import RewardChannel


@dataclass(frozen=True)
class Calibration:
    mean: float  # of the raw per-token reward, before folding
    std: float
    tokens: int  # how many response tokens it was measured on
    sources: tuple[str, ...]  # the pair sources counted as the policy's own answers

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"calibration needs a finite mean and a positive std, got {self.mean}, {self.std}")
        if self.tokens < 2:
            raise ValueError(f"calibration needs at least 2 tokens, got {self.tokens}")

    def to_json(self) -> dict:
        return {**asdict(self), "sources": list(self.sources)}

    @classmethod
    def from_json(cls, record: dict) -> Calibration:
        return cls(float(record["mean"]), float(record["std"]), int(record["tokens"]), tuple(record["sources"]))

    @classmethod
    def measure(cls, rewards: torch.Tensor, sources: tuple[str, ...]) -> Calibration:
        """From a flat tensor of raw per-token rewards."""
        values = rewards.double()
        return cls(values.mean().item(), values.std().item(), values.numel(), sources)


@torch.no_grad()
def fold(channel: RewardChannel, calibration: Calibration) -> None:
    """Rewrites the head in place so that it outputs (r − mean) / std."""
    head = channel.head
    head.weight.div_(calibration.std)
    head.bias.sub_(calibration.mean).div_(calibration.std)


@torch.no_grad()
def unfold(channel: RewardChannel, calibration: Calibration) -> None:
    """The inverse of `fold`: the head outputs its raw reward again (to train it further)."""
    head = channel.head
    head.weight.mul_(calibration.std)
    head.bias.mul_(calibration.std).add_(calibration.mean)
