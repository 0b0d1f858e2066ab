"""Preference pairs: from judge verdicts, from GSM answers, interleaved."""

from __future__ import annotations

import pytest

from sla_pipeline.data.build import interleave, judged_pair, math_pairs
from sla_pipeline.data.judge import Judgement, verdict_of
from sla_pipeline.data.pairs import Pair
from sla_pipeline.data.sampling import Sample, SamplingSettings
from sla_pipeline.data.sources import Item
from sla_pipeline.training.config import TrainConfig


def test_judge_verdict_is_the_sign_of_the_debiased_margin():
    assert verdict_of(0.4) == "first" and verdict_of(-0.1) == "second"
    assert verdict_of(0.0) == "tie"  # e.g. "A" whatever is shown first: nothing left once the position is removed


def _item(answer=7.0, split="train"):
    return Item("gsm/t1-s0-0", "gsm", split, ({"role": "user", "content": "q"},), answer=answer)


def test_math_pairs_pair_right_with_wrong_answers_and_skip_cut_or_numberless_ones():
    samples = [Sample("x", 0, r"\boxed{7}", "stop", 9), Sample("x", 1, r"\boxed{8}", "stop", 9),
               Sample("x", 2, r"\boxed{7} and more", "length", 9), Sample("x", 3, "no idea", "stop", 9),
               Sample("x", 4, "#### 7", "stop", 9), Sample("x", 5, r"\boxed{9}", "stop", 9)]
    pairs = math_pairs(_item(), samples, limit=3)
    # distinct samples first: (right 0, wrong 0), (right 1, wrong 1), then (right 0, wrong 1)
    assert [(p.chosen, p.rejected) for p in pairs] == [(r"\boxed{7}", r"\boxed{8}"), ("#### 7", r"\boxed{9}"),
                                                       (r"\boxed{7}", r"\boxed{9}")]
    assert all(p.split == "train" and p.label["answer"] == 7.0 for p in pairs)
    assert math_pairs(_item(), samples[:1], limit=3) == []  # nothing wrong to pair with
    assert all(p.split == "heldout" for p in math_pairs(_item(split="heldout"), samples, limit=3))


def test_interleave_spreads_the_shorter_list_and_keeps_both_orders():
    merged = interleave(list(range(8)), ["a", "b"])
    assert merged == [0, 1, "a", 2, 3, 4, 5, "b", 6, 7]
    assert interleave([1, 2], []) == [1, 2] and interleave([], ["a"]) == ["a"]


def test_judged_pair_follows_the_verdict_and_drops_ties():
    item = Item("alpaca/3", "alpaca", "train", ({"role": "user", "content": "q"},))
    s = [Sample("alpaca/3", 0, "one", "stop", 1), Sample("alpaca/3", 1, "two", "stop", 1)]
    assert judged_pair(item, s, Judgement("alpaca/3", "tie")) is None
    assert (judged_pair(item, s, Judgement("alpaca/3", "first")).chosen,
            judged_pair(item, s, Judgement("alpaca/3", "second")).chosen) == ("one", "two")


def test_configs_refuse_bad_values():
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(warmup=1.0)
    with pytest.raises(ValueError, match="lookahead"):
        TrainConfig(lookahead=0)
    with pytest.raises(ValueError, match="pair_weight"):
        TrainConfig(pair_weight=1.0)  # a value-loss term
    with pytest.raises(ValueError, match="pair_weight"):
        TrainConfig(loss="value", pair_weight=-1.0)
    with pytest.raises(ValueError, match="consistency_weight"):
        TrainConfig(consistency_weight=0.5)  # a value-loss term
    with pytest.raises(ValueError, match="consistency_weight"):
        TrainConfig(loss="value", consistency_weight=-0.5)
    with pytest.raises(ValueError, match="readout"):
        TrainConfig(loss="value", readout="max")
    with pytest.raises(ValueError, match="keep_by"):
        TrainConfig(loss="value", keep_by="loss")
    with pytest.raises(ValueError, match="value head"):
        TrainConfig(readout="mean")  # a pair-trained head is kept by its pair accuracy
    assert TrainConfig(loss="value", readout="mean", keep_by="candidates").keep_by == "candidates"
    with pytest.raises(ValueError, match="validate_candidates"):
        TrainConfig(loss="value", keep_by="candidates", validate_candidates=False)
    with pytest.raises(ValueError, match="problems must be"):
        TrainConfig(loss="value", problems="some")
    with pytest.raises(ValueError, match="rollouts all, labels or none"):
        TrainConfig(loss="value", rollouts="half")
    with pytest.raises(ValueError, match="not a seqwise_bt head"):
        TrainConfig(rollouts="none")  # the bank's rollouts are a value head's data
    assert TrainConfig(loss="value", problems="siblings", rollouts="labels").rollouts == "labels"
    with pytest.raises(ValueError, match="candidate_weight"):
        TrainConfig(candidate_weight=1.0)  # a value-loss term
    with pytest.raises(ValueError, match="candidate_weight"):
        TrainConfig(loss="value", candidate_weight=-1.0)
    with pytest.raises(ValueError, match="max_problems"):
        TrainConfig(loss="value", max_problems=0)
    with pytest.raises(ValueError, match="max_problems"):
        TrainConfig(max_problems=10)  # a value head's bank problems
    with pytest.raises(ValueError, match="temperature"):
        SamplingSettings(temperature=0.0)
    with pytest.raises(ValueError, match="non-empty"):
        Pair("p", "gsm", "i", "train", ({"role": "user", "content": "q"},), "", "x")
