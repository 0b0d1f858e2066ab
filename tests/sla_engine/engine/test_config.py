"""The engine's settings: validated at construction, the CPU defaults, compiled mode on request."""

from __future__ import annotations

import os

import pytest

from sla.cli import build_parser
from sla_engine.engine import EngineConfig


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model_path": ""}, "model_path"),
        ({"max_model_len": 8}, "max_model_len"),
        ({"max_num_seqs": 0}, "max_num_seqs"),
        ({"dtype": "int4"}, "dtype"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ({"kv_cache_gib": 0.1}, "kv_cache_gib"),
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
    ],
)
def test_engine_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EngineConfig(**{"model_path": "/m", "served_name": "m", **kwargs})


def test_engine_args_cpu_defaults(monkeypatch):
    monkeypatch.delenv("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", raising=False)
    args = EngineConfig(model_path="/m", served_name="m").engine_args()
    assert args.dtype == "float32" and args.enforce_eager and args.enable_prefix_caching
    assert args.served_model_name == "m" and args.disable_log_stats is False
    assert os.environ["VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS"] == "1800"  # vLLM's 300 s killed a busy CPU engine
    assert args.kv_cache_memory_bytes == 2 << 30  # per engine, not a process-wide variable
    assert EngineConfig(model_path="/m", served_name="m",
                        kv_cache_gib=0.5).engine_args().kv_cache_memory_bytes == 1 << 29
    monkeypatch.setenv("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", "90")  # an operator's own choice stands
    EngineConfig(model_path="/m", served_name="m").engine_args()
    assert os.environ["VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS"] == "90"


def test_compile_flag_selects_compiled_mode():
    args = build_parser().parse_args(["serve", "--compile"])
    assert args.compile is True
    config = EngineConfig(model_path="/m", served_name="m", enforce_eager=False).engine_args()
    assert config.enforce_eager is False
