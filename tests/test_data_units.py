"""Pure logic of the data pipeline and training metrics: no engine, no downloads."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
import torch

from sla_pipeline.data.build import interleave, judged_pair, math_pairs
from sla_pipeline.data.gsm import extract_answer, is_correct, reference_answer
from sla_pipeline.data.jsonl import BadLine, JsonlWriter, read_jsonl
from sla_pipeline.data.judge import Judgement, verdict_of
from sla_pipeline.data.pairs import Pair, read_pairs
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.data.sampling import Sample, SamplingSettings
from sla_pipeline.data.sources import Item
from sla_pipeline.data.split import split_of
from sla_pipeline.training.config import TrainConfig
from sla_pipeline.training.losses import pair_loss
from sla_pipeline.training.metrics import autrc, parting, prefix_accuracy, trc_curve


@pytest.mark.parametrize("text, value", [
    (r"so the total is \boxed{1,234}.", 1234),
    (r"\boxed{\$18.50}", 18.5),
    (r"\boxed{\frac{3}{4}}", 0.75),
    ("She pays 3 + 4 = 7 dollars.\n#### 7", 7),
    ("#### 1,000 apples", 1000),
    ("The answer is: -3 degrees.", -3),
    ("The answer is $42.", 42),
    ("First 12 cookies, then 30 cookies in all.", 30),
    ("It costs 12.5%.", 12.5),
    (r"earlier \boxed{5}, corrected: \boxed{6} and then 99 more words 100", 6),
    ("no number at all", None),
    ("#### 19/2", 9.5),
    (r"\boxed{3 / 4}", 0.75),
    ("Half of 19 is 19/2.", 9.5),  # the last-number fallback reads a trailing fraction, not its denominator
    ("24/2 = 12 each, 3 friends", 3),
])
def test_gsm_final_number_on_tricky_formats(text, value):
    assert extract_answer(text) == value


def test_gsm_reference_answers_read_commas_and_fractions_and_refuse_a_missing_one():
    assert reference_answer("3 + 4 = 7\n#### 1,007") == 1007
    assert reference_answer("half of 19\n#### 19/2") == 9.5  # GSM-symbolic has such answers
    with pytest.raises(ValueError, match="####"):
        reference_answer("7 apples")


def test_gsm_correctness_tolerates_float_formatting_only():
    assert is_correct(r"\boxed{10.0}", 10)
    assert not is_correct(r"\boxed{10.01}", 10)
    assert not is_correct("I cannot tell.", 10)


def test_split_is_deterministic_and_sources_are_salted_separately():
    keys = [str(i) for i in range(2000)]
    first = [split_of("alpaca", k) for k in keys]
    assert first == [split_of("alpaca", k) for k in keys]
    held = first.count("heldout") / len(keys)
    assert 0.15 < held < 0.25  # 1 in 5
    assert first != [split_of("gsm", k) for k in keys]
    assert split_of("mtbench", "81", trainable=False) == "heldout"
    with pytest.raises(ValueError, match="unknown data source"):
        split_of("nope", "1")


def test_malformed_jsonl_lines_are_reported_with_line_numbers_and_skipped(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = Pair("p1", "gsm", "gsm/t1-s0-0", "train", ({"role": "user", "content": "q"},), "right", "wrong").to_json()
    lines = [json.dumps(good), "{not json", json.dumps({**good, "id": "p2", "split": "elsewhere"}), "[1, 2]",
             json.dumps({**good, "id": "p3"})]
    path.write_text("\n".join(lines) + "\n")
    bad: list[BadLine] = []
    pairs = read_pairs(path, bad)
    assert [p.id for p in pairs] == ["p1", "p3"]
    assert [b.line for b in bad] == [2, 3, 4]
    assert "split must be" in bad[1].error and str(bad[0]).startswith(f"{path}:2:")


def test_writer_ends_a_line_cut_by_a_crash_so_later_records_survive(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b"')  # the process died mid-line
    with JsonlWriter(path) as w:
        w.write({"a": 3})
    bad: list[BadLine] = []
    assert [r["a"] for r in read_jsonl(path, dict, bad)] == [1, 3]
    assert [b.line for b in bad] == [2]


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


def test_token_reward_curve_and_autrc():
    # chosen is better only from its second half on: early prefixes cannot tell, full ones can
    chosen = [[0.0, 0.0, 1.0, 1.0]] * 4
    rejected = [[0.0, 0.0, -1.0, -1.0]] * 4
    curve = trc_curve(chosen, rejected)
    assert curve == {0.25: 0.5, 0.5: 0.5, 0.75: 1.0, 1.0: 1.0}
    assert math.isclose(autrc({f: 1.0 for f in curve}), 0.9375)  # perfect from the first quarter
    assert math.isclose(autrc({f: 0.5 for f in curve}), 0.5)  # chance
    assert 0.5 < autrc(curve) < 0.9375
    assert prefix_accuracy([[1.0]], [[1.0]], 1.0) == 0.5  # a tie counts one half


def test_siblings_part_where_their_tokens_first_differ():
    assert parting([5, 6, 7, 8], [5, 6, 9]) == 2 and parting([1], [2]) == 0 and parting([1, 2], [1, 2, 3]) == 2


@pytest.mark.parametrize("kind", ["seqwise_bt", "tokenwise_bt", "cross_entropy"])
def test_losses_fall_as_chosen_rewards_rise_above_rejected(kind):
    mc = torch.tensor([[1.0, 1.0, 0.0]])
    mr = torch.tensor([[1.0, 1.0, 1.0]])
    rc = torch.zeros(1, 3, requires_grad=True)
    rr = torch.zeros(1, 3, requires_grad=True)
    pair_loss(kind, rc, mc, rr, mr).backward()
    assert (rc.grad[0, :2] < 0).all() and rc.grad[0, 2] == 0  # raise chosen tokens; padding untouched
    assert (rr.grad[0] >= 0).all() and rr.grad.sum() > 0  # lower rejected tokens
    better = pair_loss(kind, torch.full((1, 3), 2.0), mc, torch.full((1, 3), -2.0), mr)
    assert better < pair_loss(kind, torch.zeros(1, 3), mc, torch.zeros(1, 3), mr)


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
    with pytest.raises(ValueError, match="temperature"):
        SamplingSettings(temperature=0.0)
    with pytest.raises(ValueError, match="non-empty"):
        Pair("p", "gsm", "i", "train", ({"role": "user", "content": "q"},), "", "x")


def test_resumable_runs_keep_to_their_concurrency_and_write_each_result_as_it_returns(tmp_path):
    out, running, most = tmp_path / "done.jsonl", set(), [0]

    async def work(n: int) -> list[dict]:
        running.add(n)
        most[0] = max(most[0], len(running))
        await asyncio.sleep(0.01 * (n % 3))
        running.discard(n)
        if n == 7:
            raise RuntimeError("boom")
        return [{"n": n, "part": p} for p in range(n % 2 + 1)]

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(run_resumable(range(10), work, out, total=12, concurrency=3, desc="t", unit="item"))
    assert most[0] == 3
    written = list(read_jsonl(out, lambda r: (r["n"], r["part"])))
    # what finished before the failure is on disk, whole (both parts of odd items); the failed item is not
    assert 7 not in {n for n, _ in written} and len(written) == len(set(written))
    assert len({n for n, _ in written}) >= 5  # item 7 starts only once five others have finished
    assert all((n, 1) in written for n, p in written if n % 2)
