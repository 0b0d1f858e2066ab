"""Tiny random models of the two shipped families (head_dim 64, as the CPU attention kernel needs), saved as
Hugging Face folders with the real tokenizers of the packaged models, plus random reward heads for them."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from sla_engine.reward import ChannelConfig, RewardChannel, RewardHead
from sla_engine.store import ModelStore

TOKENIZER_SOURCE = {"qwen2": "qwen2.5-coder-0.5b-instruct", "llama": "smollm2-135m-instruct"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def make_tiny_model(family: str, folder: Path, seed: int = 0) -> Path:
    source = ModelStore().pull(TOKENIZER_SOURCE[family])
    base = AutoConfig.from_pretrained(source)
    config = AutoConfig.for_model(
        family, vocab_size=base.vocab_size, hidden_size=128, intermediate_size=256, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=64, max_position_embeddings=4096,
        tie_word_embeddings=base.tie_word_embeddings, bos_token_id=base.bos_token_id,
        eos_token_id=base.eos_token_id, rms_norm_eps=1e-6,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    return folder


def make_random_head(model_folder: Path, out: Path, seed: int = 0, head_bias: float = 0.0,
                     kind: str = "channel") -> Path:
    """A channel with random weights, scaled so that rewards differ clearly between tokens."""
    config = AutoConfig.from_pretrained(model_folder)
    torch.manual_seed(seed)
    channel = RewardChannel(ChannelConfig(config.hidden_size, config.num_hidden_layers, width=32, head=kind))
    with torch.no_grad():
        for p in channel.parameters():
            p.add_(torch.randn_like(p) * 0.3)
        channel.head.bias.fill_(head_bias)
    return RewardHead.from_channel(channel, f"tiny-{model_folder.name}", model_folder).save(out)
