"""What every training loop starts from: the channel (fresh, or a head trained before) and the learning-rate
schedule (linear warm-up, then cosine decay)."""

from __future__ import annotations

import math
from pathlib import Path

from sla_engine.reward import ChannelConfig, RewardChannel, RewardHead
from sla_engine.reward.calibration import unfold
from sla_engine.reward.weights import model_dims
from sla_pipeline.training.config import TrainConfig


def cosine_with_warmup(total: int, warmup: float):
    warm = max(1, round(total * warmup)) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def initial_channel(model_path: Path, config: TrainConfig, init: Path | None) -> RewardChannel:
    """A fresh channel, or the head in `init` with its calibration taken out (training works on raw rewards)."""
    if init is None:
        hidden, layers = model_dims(model_path)
        return RewardChannel(ChannelConfig(hidden, layers, config.width, config.head))
    head = RewardHead.load_for(init, model_path)
    if (head.config.head, head.config.width) != (config.head, config.width):
        raise ValueError(f"{init}: a {head.config.head} head of width {head.config.width}; the training config asks "
                         f"for {config.head} of width {config.width}")
    channel = head.channel()
    if head.calibration is not None:
        unfold(channel, head.calibration)
    return channel
