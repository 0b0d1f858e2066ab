"""Typed configs reject bad values at construction; the CLI accepts what the Makefile and image run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from server.config import ServerConfig
from server.errors import APIError, parse_body
from server.protocol import ChatCompletionRequest, SearchField
from sla.cli import build_parser, main
from sla_engine.engine import EngineConfig
from sla_engine.search.choose import CONFIGS
from sla_engine.store.store import default_cache_dir


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


@pytest.mark.parametrize("kwargs", [{"port": 0}, {"api_key": ""}, {"max_body_bytes": 10},
                                    {"max_concurrent_requests": 0}, {"max_tokens_cap": 0}])
def test_server_settings_validation(kwargs):
    with pytest.raises(ValueError):
        ServerConfig(**kwargs)


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SLA_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SLA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "sla"


def test_serve_command_lines_parse(monkeypatch):
    monkeypatch.setenv("SLA_PORT", "9001")
    args = build_parser().parse_args(["serve", "--model", "smollm2-135m-instruct", "--api-key", "k"])
    assert (args.model, args.port, args.api_key, args.host) == ("smollm2-135m-instruct", 9001, "k", "127.0.0.1")
    assert build_parser().parse_args(["models", "pull",
                                      "qwen2.5-coder-0.5b-instruct"]).name == "qwen2.5-coder-0.5b-instruct"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["models", "pull", "gpt-7"])


def test_request_parsing():
    req = parse_body(ChatCompletionRequest, b'{"model": "m", "messages": [{"role": "developer", "content": '
                                            b'[{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}]}],'
                                            b' "stop": "END", "max_completion_tokens": 7, "max_tokens": 99}')
    assert req.messages[0].for_template() == {"role": "system", "content": "be brief"}
    assert req.stop == ["END"] and req.completion_limit == 7 and not req.include_usage
    with pytest.raises(APIError) as e:
        parse_body(ChatCompletionRequest,
                   b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [""]}')
    assert (e.value.status, e.value.param) == (400, "stop")
    with pytest.raises(APIError) as e:
        parse_body(ChatCompletionRequest,
                   b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "5"}')
    assert e.value.param == "max_tokens"


def test_the_search_field_takes_every_setting_of_every_strategy():
    settings = {f.name for cls in CONFIGS.values() for f in dataclasses.fields(cls)}
    assert settings == set(SearchField.model_fields)  # a setting missing here would be a 400 "extra field"
    assert SearchField(strategy="best_of_n", greedy_first=True, top_k=20).given() == {
        "strategy": "best_of_n", "greedy_first": True, "top_k": 20}


def test_compile_flag_selects_compiled_mode():
    args = build_parser().parse_args(["serve", "--compile"])
    assert args.compile is True
    config = EngineConfig(model_path="/m", served_name="m", enforce_eager=False).engine_args()
    assert config.enforce_eager is False


@pytest.mark.parametrize("argv, message", [
    (["bench", "--strategy", 'r={"strategy": "rsd"}'], "rsd needs --target-model"),
    (["bench", "--strategy", 's={"strategy": "sla", "width": 99}'], "width"),
    (["bench", "--concurrency", "0"], "concurrency"),
])
def test_bench_refuses_bad_plans_before_any_engine_starts(argv, message, capsys):
    assert main(["bench", "--model", "no-such-model-anywhere", *argv[1:]]) == 2
    assert message in capsys.readouterr().err


def test_sla_serve_finds_the_shipped_head_unless_told_not_to(monkeypatch, tmp_path):
    from server.cli import reward_head
    from sla_engine.reward.shipped import shipped_head
    from sla_engine.store import DEFAULT_MODEL

    shipped = Path(__file__).resolve().parents[1] / "heads" / DEFAULT_MODEL
    assert shipped_head(DEFAULT_MODEL) == shipped == shipped_head("qwen2.5-0.5b-instruct")  # the old name too
    assert shipped_head("smollm2-135m-instruct") is None
    off = build_parser().parse_args(["serve", "--no-reward-head"])
    assert reward_head(off, DEFAULT_MODEL, Path("/no/model")) is None  # nothing is loaded or checked
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--no-reward-head", "--reward-head", str(shipped)])
    monkeypatch.setenv("SLA_HEADS_DIR", str(tmp_path))  # the container images point it at their copy
    assert shipped_head(DEFAULT_MODEL) is None
