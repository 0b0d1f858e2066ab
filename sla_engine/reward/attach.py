"""Attaching a reward head to a base model for serving: validate it, pick the reserved ids, and build the
`hf_overrides` that make vLLM load the reward model class (vllm_models.py) instead of the base one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sla_engine.reward.columns import RewardIds
from sla_engine.reward.plugin import ARCHITECTURES, REWARD_CONFIG_KEY
from sla_engine.reward.weights import RewardHead, RewardHeadError


def reward_overrides(model_path: Path, head_path: Path) -> tuple[dict, RewardIds, str]:
    """The overrides, the reserved ids and the head's read-out. Raises RewardHeadError (a clear message) for a
    head that is unreadable or made for another model."""
    from transformers import AutoTokenizer

    head = RewardHead.load_for(head_path, model_path)
    config = json.loads((model_path / "config.json").read_text())
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in ARCHITECTURES:
        raise RewardHeadError(f"no reward model class for architecture {arch}; supported: {', '.join(ARCHITECTURES)}")
    ids = RewardIds.for_vocab(config["vocab_size"], len(AutoTokenizer.from_pretrained(model_path)))
    overrides = {
        "architectures": [ARCHITECTURES[arch]],
        "vocab_size": config["vocab_size"] + ids.added_rows,
        REWARD_CONFIG_KEY: {"head": str(head_path.resolve()), "ids": dataclasses.asdict(ids)},
    }
    return overrides, ids, head.readout
