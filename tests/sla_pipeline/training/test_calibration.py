"""`sla calibrate --bank` (sla_pipeline/training/calibration.py): a head is standardized on the rewards it
gives the bank's train-side greedy answers and samples — those only, as far as a search reads them — and keeps
its read-out and its rankings (a bf16 head keeps bf16 weights but its folded last layer, stored in float32 so
that the map is exact); calibrating it again composes the maps."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from sla_engine.reward import RewardHead
from sla_pipeline.training.calibration import BANK_SOURCES, bank_answers, calibrate_on_bank
from sla_pipeline.training.features import rewards_of
from sla_pipeline.training.value_data import scored_length
from tests.helpers.bank_answers import answer, marker_task
from tests.helpers.paths import ROOT
from tests.helpers.tiny_models import make_random_head, make_tiny_model


def bank(rng: random.Random) -> tuple[list, dict[str, list[int]]]:
    train, prompts = marker_task(rng, 6, "train")
    heldout, more = marker_task(rng, 3, "heldout")
    samples = [answer(f"train/{i}", "s0", [rng.randrange(3000, 9000) for _ in range(5)], True, finish="stop")
               for i in range(6)]
    return train + samples + heldout, prompts | more


def test_only_the_first_train_problems_greedy_answers_and_samples_are_counted():
    records, _ = bank(random.Random(0))
    chosen = bank_answers(records, 4)
    assert {r.item for r in chosen} == {f"train/{i}" for i in range(4)}
    assert sorted(r.kind for r in chosen) == ["sample"] * 4 + ["trunk"] * 4  # no fork, no held-out answer


def test_each_domain_gives_its_own_first_train_problems():
    records, _ = bank(random.Random(0))
    code = [dataclasses.replace(answer(f"mbpp/{i}", "s0", [5, 6, 7], i % 2 == 0, finish="stop"), domain="mbpp",
                                answer=None) for i in range(5)]
    chosen = bank_answers(records + code, 3)
    assert {r.item for r in chosen} == {f"train/{i}" for i in range(3)} | {f"mbpp/{i}" for i in range(3)}


@pytest.mark.download
def test_a_bank_calibrated_head_serves_standard_rewards_in_the_same_order(tmp_path):
    folder = make_tiny_model("qwen2", tmp_path / "tiny", seed=6)
    backbone = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    head_dir = make_random_head(folder, tmp_path / "head", seed=7, head_bias=2.0)
    RewardHead.load(head_dir).save(head_dir, torch.bfloat16)  # as heads are shipped
    raw_head = RewardHead.load(head_dir)
    records, prompts = bank(random.Random(1))
    chosen = bank_answers(records, 6)
    answers = {a.id: (a, scored_length(a, 512)) for a in chosen}
    raw = rewards_of(backbone, [raw_head], answers, prompts)[0]

    total = calibrate_on_bank(folder, head_dir, chosen, prompts, backbone=backbone)
    served_head = RewardHead.load(head_dir)
    assert served_head.calibration == total and total.sources == BANK_SOURCES
    assert served_head.readout == raw_head.readout
    dtypes = {k: v.dtype for k, v in served_head.state_dict.items()}
    assert dtypes.pop("head.weight") == dtypes.pop("head.bias") == torch.float32
    assert set(dtypes.values()) == {torch.bfloat16}
    assert total.tokens == sum(seen for _,
                               seen in answers.values()) == 6 * 11 + 6 * 4  # a sample's final EOS is not read
    served = rewards_of(backbone, [served_head], answers, prompts)[0]
    flat = torch.tensor([x for r in served.values() for x in r])
    assert abs(flat.mean().item()) < 1e-3 and abs(flat.std().item() - 1) < 1e-3
    for key, rewards in raw.items():  # the same affine map everywhere: every ranking is kept
        expected = (torch.tensor(rewards) - total.mean) / total.std
        torch.testing.assert_close(torch.tensor(served[key]), expected, atol=1e-5, rtol=1e-5)

    again = calibrate_on_bank(folder, head_dir, chosen, prompts, backbone=backbone)
    assert again.mean == pytest.approx(total.mean, abs=1e-3 * total.std)  # composed: still raw -> served
    assert again.std == pytest.approx(total.std, rel=1e-3)


def test_the_default_models_shipped_head_is_value_184_calibrated():
    """What `make serve` loads is the head the recommended search was measured with, under an exact affine map:
    every tensor value-184's but the last layer, value-184's folded with the recorded mean and std."""

    from sla_engine.store import DEFAULT_MODEL

    shipped = ROOT / "heads" / DEFAULT_MODEL
    served, measured = RewardHead.load(shipped), RewardHead.load(shipped / "value-184")
    c = served.calibration
    assert c is not None and c.sources == BANK_SOURCES and measured.calibration is None
    assert served.readout == measured.readout == "last" and served.config == measured.config
    for key, tensor in measured.state_dict.items():
        if not key.startswith("head."):
            assert torch.equal(served.state_dict[key], tensor), key
    weight, bias = (measured.state_dict[k].double() for k in ("head.weight", "head.bias"))
    torch.testing.assert_close(served.state_dict["head.weight"].double(), weight / c.std, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(served.state_dict["head.bias"].double(), (bias - c.mean) / c.std, rtol=1e-6, atol=1e-9)
