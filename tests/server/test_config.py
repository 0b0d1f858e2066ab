"""The server's settings and `sla serve`'s command line: what the Makefile and image run parses, bad values are
refused, the shipped head is found."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from server.config import ServerConfig
from server.errors import APIError, parse_body
from server.protocol import ChatCompletionRequest, SearchField
from sla.cli import build_parser
from sla_engine.search.choose import CONFIGS
from tests.helpers.paths import ROOT


@pytest.mark.parametrize("kwargs", [{"port": 0}, {"api_key": ""}, {"max_body_bytes": 10},
                                    {"max_concurrent_requests": 0}, {"max_tokens_cap": 0}])
def test_server_settings_validation(kwargs):
    with pytest.raises(ValueError):
        ServerConfig(**kwargs)


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


def test_sla_serve_finds_the_shipped_head_unless_told_not_to(monkeypatch, tmp_path):
    from server.cli import reward_head
    from sla_engine.reward.shipped import shipped_head
    from sla_engine.store import DEFAULT_MODEL

    shipped = ROOT / "heads" / DEFAULT_MODEL
    assert shipped_head(DEFAULT_MODEL) == shipped == shipped_head("qwen2.5-0.5b-instruct")  # the old name too
    assert shipped_head("smollm2-135m-instruct") is None
    off = build_parser().parse_args(["serve", "--no-reward-head"])
    assert reward_head(off, DEFAULT_MODEL, Path("/no/model")) is None  # nothing is loaded or checked
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--no-reward-head", "--reward-head", str(shipped)])
    monkeypatch.setenv("SLA_HEADS_DIR", str(tmp_path))  # the container images point it at their copy
    assert shipped_head(DEFAULT_MODEL) is None
