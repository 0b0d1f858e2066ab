"""Engine settings, validated at construction, with defaults measured per platform.

CPU defaults (2-core AVX2 machine; figures in docs/measurements.md):
- dtype float32: vLLM's "auto" downcasts fp32 checkpoints to bf16, which this CPU only emulates
  (slower at batch 1, and batching stops helping).
- eager mode with compilation off: ready in ~15 s instead of ~47 s (or ~220 s compiled for the 0.5B model),
  for a decode speed-up of only ~10 % when compiled.
- a fixed KV cache size (`kv_cache_gib`), not a fraction of the machine's memory.
- KV blocks of 32 tokens (vLLM's CPU default is 128): search branches share only full blocks.
- on ≤ 2 cores, no core held back from the model's threads (1.5× faster decode there).
- an engine step may take 30 min before vLLM declares the engine dead (its default, 300 s, killed one here).
GPU defaults are vLLM's own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


CPU_STEP_TIMEOUT_S = 1800


@dataclass(frozen=True)
class EngineConfig:
    model_path: str
    served_name: str
    max_model_len: int = 4096
    max_num_seqs: int = 64
    dtype: str | None = None  # None: float32 on CPU, vLLM's "auto" on GPU
    enforce_eager: bool | None = None  # None: eager on CPU, compiled on GPU
    gpu_memory_utilization: float | None = None  # None: vLLM's default on GPU; ignored on CPU
    kv_cache_gib: float = 2.0  # CPU only: KV cache size
    tensor_parallel_size: int = 1  # GPUs per replica (vLLM's own tensor parallelism); 1 on CPU
    enable_prefix_caching: bool = True
    # KV block size; None: 32 on CPU (the smallest its attention kernel takes; only full blocks are shared
    # between search branches, so a branch recomputes up to block_size − 1 prompt tokens), vLLM's 16 on GPU
    block_size: int | None = None
    seed: int = 0
    warmup: bool = True
    reward_head: str | None = None  # folder with reward_head.{json,safetensors}; None: plain decoding

    def __post_init__(self) -> None:
        if not self.model_path:
            raise ValueError("model_path is required")
        if self.max_model_len < 16:
            raise ValueError(f"max_model_len must be >= 16, got {self.max_model_len}")
        if self.max_num_seqs < 1:
            raise ValueError(f"max_num_seqs must be >= 1, got {self.max_num_seqs}")
        if self.dtype not in (None, "auto", "float32", "float16", "bfloat16"):
            raise ValueError(f"dtype must be auto, float32, float16 or bfloat16, got {self.dtype!r}")
        if self.gpu_memory_utilization is not None and not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.block_size is not None and (self.block_size < 16 or self.block_size % 16):
            raise ValueError(f"block_size must be a multiple of 16, got {self.block_size}")
        if self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if not self.kv_cache_gib >= 0.25:
            raise ValueError(f"kv_cache_gib must be >= 0.25, got {self.kv_cache_gib}")

    def engine_args(self, hf_overrides: dict | None = None):
        """vLLM's AsyncEngineArgs for this platform (`hf_overrides` selects the reward model class)."""
        from vllm.engine.arg_utils import AsyncEngineArgs

        from sla_engine.reward.gate import EXTENSION, GATE

        cpu = on_cpu()
        kwargs: dict = dict(
            model=self.model_path,
            served_model_name=self.served_name,
            max_model_len=self.max_model_len,
            max_num_seqs=self.max_num_seqs,
            enable_prefix_caching=self.enable_prefix_caching,
            seed=self.seed,
            tensor_parallel_size=self.tensor_parallel_size,
            disable_log_stats=False,  # keeps vLLM's Prometheus metrics
            hf_overrides=hf_overrides,
            # With a reward head every request reads logits[R] − logits[Z]; raw logits give it exactly and
            # spare the full-vocabulary log-softmax that raw logprobs would cost at every step.
            logprobs_mode="raw_logits" if hf_overrides else None,
            # and a step whose requests read none of it (plain decoding) skips the channel (reward/gate.py)
            logits_processors=[GATE] if hf_overrides else None,
            worker_extension_cls=EXTENSION if hf_overrides else None,  # Engine.channel_steps
        )
        if cpu:
            # vLLM gives up on an engine step after VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS (300) and kills the engine.
            # On a CPU one step can be a prefill of thousands of tokens at ~150 tok/s on 2 cores (~55 s for 8k),
            # and several times that when other work shares the cores: a batch of 40 best-of-5 sequences passed
            # 300 s here once. 1,800 s keeps a 6x margin over that while a truly hung step still ends.
            os.environ.setdefault("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", str(CPU_STEP_TIMEOUT_S))
            if (os.cpu_count() or 1) <= 2:
                # vLLM keeps one core out of the model's OpenMP threads for its scheduler process; on a
                # 2-core machine that halves the compute (measured: 173 → 117 ms/step at batch 1).
                os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            kwargs.update(
                kv_cache_memory_bytes=int(self.kv_cache_gib * (1 << 30)),
                dtype=self.dtype or "float32",
                block_size=self.block_size or 32,
                enforce_eager=True if self.enforce_eager is None else self.enforce_eager,
                compilation_config={"mode": 0} if self.enforce_eager in (None, True) else None,
            )
        else:
            kwargs.update(dtype=self.dtype or "auto", enforce_eager=bool(self.enforce_eager),
                          block_size=self.block_size)
            if self.gpu_memory_utilization is not None:
                kwargs["gpu_memory_utilization"] = self.gpu_memory_utilization
        return AsyncEngineArgs(**{k: v for k, v in kwargs.items() if v is not None})
