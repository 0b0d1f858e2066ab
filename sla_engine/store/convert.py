"""GGUF → Hugging Face folder (safetensors + tokenizer + chat template) with transformers.

transformers dequantizes GGUF tensors on load; the quantizer marker is dropped before saving so that the
folder loads as a plain checkpoint (vLLM and transformers alike).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm


def gguf_to_hf(gguf: Path, out_dir: Path, dtype: torch.dtype, generation: dict) -> None:
    """`generation` overrides entries of the saved generation_config.json."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    steps = ["tokenizer", "weights", "save"]
    with tqdm(total=len(steps), desc=f"convert {gguf.name}", unit="step") as bar:
        bar.set_postfix_str("tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        bar.update()
        bar.set_postfix_str("weights")
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        bar.update()
        bar.set_postfix_str("save")
        for key, value in generation.items():
            setattr(model.generation_config, key, value)
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        bar.update()
