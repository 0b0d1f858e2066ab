"""Reward-head files: round trip, and clear refusals of corrupt heads or heads for another base model —
at start-up (`sla serve` exits before any engine starts), not at the first request."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import torch
from vllm import SamplingParams
from vllm.logprobs import Logprob

from sla_engine.reward import ChannelConfig, RewardChannel, RewardHead, RewardHeadError
from sla_engine.reward.calibration import Calibration, fold, unfold
from sla_engine.reward.columns import FORK_OFFSET, OFFSET, RewardIds
from sla_engine.reward.weights import META_FILE, WEIGHTS_FILE, model_fingerprint
from tests.helpers.tiny_models import make_random_head, make_tiny_model


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    folder = make_tiny_model("llama", tmp_path_factory.mktemp("m"))
    return folder, make_random_head(folder, folder / "head")


def test_round_trip_keeps_weights_and_checks_the_base(tiny_llama):
    folder, head_dir = tiny_llama
    head = RewardHead.load(head_dir)
    head.check_base(folder)
    assert head.base_model_sha256 == model_fingerprint(folder)
    again = RewardHead.load(head_dir / META_FILE)  # either file's path works
    assert all(torch.equal(again.state_dict[k], v) for k, v in head.state_dict.items())


def test_final_hidden_only_head_has_no_channel():
    channel = RewardChannel(ChannelConfig(hidden_size=16, num_layers=3, width=8, head="final_hidden"))
    assert not channel.uses_layers and len(channel.projs) == 0 and channel.head.in_features == 16
    r = channel([], torch.randn(5, 16))
    assert r.shape == (5,)


@pytest.mark.parametrize("head", ["channel", "final_hidden"])
def test_folding_a_calibration_standardizes_the_rewards(head):
    torch.manual_seed(0)
    channel = RewardChannel(ChannelConfig(hidden_size=16, num_layers=3, width=8, head=head))
    layers, final = [torch.randn(40, 16) for _ in range(3)], torch.randn(40, 16)
    raw = channel(layers, final).detach()
    calibration = Calibration.measure(raw, ("gsm",))
    assert calibration.tokens == 40 and abs(calibration.mean - raw.mean().item()) < 1e-6
    fold(channel, calibration)
    served = channel(layers, final).detach()
    torch.testing.assert_close(served, (raw - calibration.mean) / calibration.std, atol=1e-5, rtol=1e-5)
    assert abs(served.mean().item()) < 1e-5 and abs(served.std().item() - 1) < 1e-5
    assert torch.equal(served.argsort(), raw.argsort())  # rankings unchanged
    unfold(channel, calibration)  # back to raw, as `sla train --init` starts from
    torch.testing.assert_close(channel(layers, final).detach(), raw, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="positive std"):
        Calibration.measure(torch.ones(5), ("gsm",))


def test_calibration_round_trips_and_older_files_have_none(tiny_llama, tmp_path):
    folder, head_dir = tiny_llama
    head = RewardHead.load(head_dir)
    meta = json.loads((head_dir / META_FILE).read_text())
    meta.pop("calibration")  # a file from before calibration existed
    older = tmp_path / "older"
    head.save(older)
    (older / META_FILE).write_text(json.dumps(meta))
    assert RewardHead.load(older).calibration is None
    calibrated = RewardHead(head.config, head.base_model, head.base_model_sha256, head.state_dict,
                            Calibration(-4.5, 1.25, 1000, ("gsm", "alpaca")))
    calibrated.save(tmp_path / "new")
    assert RewardHead.load(tmp_path / "new").calibration == calibrated.calibration


def test_head_for_another_model_is_refused(tiny_llama, tmp_path):
    folder, head_dir = tiny_llama
    other = make_tiny_model("llama", tmp_path / "other", seed=1)  # same shapes, other weights
    with pytest.raises(RewardHeadError, match="trained for base model"):
        RewardHead.load(head_dir).check_base(other)
    qwen = make_tiny_model("qwen2", tmp_path / "qwen")
    config = json.loads((qwen / "config.json").read_text())
    config["num_hidden_layers"] = 5
    (qwen / "config.json").write_text(json.dumps(config))
    with pytest.raises(RewardHeadError, match="does not fit"):
        RewardHead.load(head_dir).check_base(qwen)


@pytest.mark.parametrize("damage", ["truncate", "bad_json", "missing", "wrong_version", "nan"])
def test_corrupt_heads_are_refused(tiny_llama, tmp_path, damage):
    folder, head_dir = tiny_llama
    bad = tmp_path / "bad"
    RewardHead.load(head_dir).save(bad)
    if damage == "truncate":
        data = (bad / WEIGHTS_FILE).read_bytes()
        (bad / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "bad_json":
        (bad / META_FILE).write_text("{not json")
    elif damage == "missing":
        (bad / WEIGHTS_FILE).unlink()
    elif damage == "wrong_version":
        meta = json.loads((bad / META_FILE).read_text())
        (bad / META_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    else:
        head = RewardHead.load(bad)
        head.state_dict["head.weight"][0, 0] = float("nan")
        head.save(bad)
    with pytest.raises(RewardHeadError):
        RewardHead.load(bad)


@pytest.mark.download
def test_sla_serve_refuses_a_wrong_head_before_starting(tiny_llama):
    _, head_dir = tiny_llama
    proc = subprocess.run(
        [sys.executable, "-m", "sla", "serve", "--model", "smollm2-135m-instruct", "--port", "1",
         "--reward-head", str(head_dir)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "trained for base model" in proc.stderr or "does not fit" in proc.stderr


def test_reserved_ids_and_the_logprobs_trap():
    qwen = RewardIds.for_vocab(config_vocab=151936, tokenizer_vocab=151665)  # padded rows: use them
    assert (qwen.reward, qwen.zero, qwen.entropy, qwen.added_rows) == (151917, 151918, 151919, 0)
    assert (qwen.fork, qwen.fork_logprob) == (tuple(range(151920, 151928)), tuple(range(151928, 151936)))
    llama = RewardIds.for_vocab(config_vocab=49152, tokenizer_vocab=49152)  # every row used: add nineteen
    assert (llama.reward, llama.zero, llama.entropy, llama.added_rows) == (49152, 49153, 49154, 19)
    assert llama.fork == tuple(range(49155, 49163)) and llama.fork_logprob == tuple(range(49163, 49171))
    assert RewardIds.from_dict(dataclasses.asdict(llama)) == llama
    params = llama.apply(SamplingParams(max_tokens=3))
    assert params.logprob_token_ids == list(range(49152, 49171))
    assert params.logit_bias == {c: -100.0 for c in range(49152, 49171)}
    with pytest.raises(ValueError, match="top-k logprobs"):  # would be corrupted in a mixed batch
        llama.apply(SamplingParams(max_tokens=3, logprobs=5))


def test_fork_tokens_below_min_p_times_the_first_are_left_out():
    ids = RewardIds.for_vocab(config_vocab=100, tokenizer_vocab=80)
    probs = [0.5, 0.2, 0.05, 0.05] + [0.01] * 4
    raw = {ids.zero: OFFSET, **{c: FORK_OFFSET - (10 + j) for j, c in enumerate(ids.fork)},
           **{c: math.log(p) + OFFSET for c, p in zip(ids.fork_logprob, probs)}}
    position = {c: Logprob(v) for c, v in raw.items()}  # what a raw-logits engine returns
    assert ids.top_tokens(position, 4) == [10, 11, 12, 13]
    assert ids.top_tokens(position, 4, min_p=0.09) == [10, 11, 12, 13]  # 0.05 / 0.5 = 0.1
    assert ids.top_tokens(position, 8, min_p=0.09) == [10, 11, 12, 13]  # 0.01 / 0.5 = 0.02
    assert ids.top_tokens(position, 4, min_p=0.3) == [10, 11]
    assert ids.top_tokens(position, 4, min_p=0.5) == [10]
    assert ids.top_tokens(position, 2, min_p=1.0) == [10]  # the first always stays
