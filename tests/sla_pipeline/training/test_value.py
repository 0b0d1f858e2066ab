"""Value heads (sla_pipeline/training/value.py) on a tiny model: a synthetic task whose outcome a marker token fixes
early in the answer; the value head's last-token output tells apart siblings that part at the marker, a sequence-
wise head trained on the same answers does not."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import random
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

from sla_engine.reward import RewardHead
from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.pairs import candidate_pairs, sibling_pairs
from sla_pipeline.bank.problems import FORKS, collections, train_items, validation_items
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.eval.sets import load_set
from sla_pipeline.training.bank_scoring import score_answers
from sla_pipeline.training.choices import (
    best_of_n_replay,
    choice_accuracy,
    fork_over_greedy,
    keep_trunk,
    read,
    trunk_share,
)
from sla_pipeline.training.config import TrainConfig
from sla_pipeline.training.features import FeatureCache
from sla_pipeline.training.losses import pair_loss
from sla_pipeline.training.optim import initial_channel
from sla_pipeline.training.value import (
    batch_rewards,
    candidate_views,
    consistency_term,
    read_whole,
    sibling_views,
    train_value,
)
from sla_pipeline.training.value_data import value_examples
from tests.helpers.bank_answers import answer, marker_task, with_samples
from tests.helpers.reference import reference_rewards
from tests.helpers.tiny_models import make_random_head, make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random qwen2 model's folder and its transformers backbone (the feature source)."""
    folder = make_tiny_model("qwen2", tmp_path_factory.mktemp("tiny"), seed=3)
    return folder, AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


@pytest.mark.download
def test_a_value_head_reads_the_outcome_at_the_last_token_where_a_sequence_wise_head_does_not(tiny, tmp_path):
    folder, backbone = tiny
    rng = random.Random(0)
    train, prompts = marker_task(rng, 400, "train")
    heldout, more = marker_task(rng, 60, "heldout")
    prompts |= more
    config = TrainConfig(loss="value", width=32, lr=3e-3, epochs=8, batch_size=16, warmup=0.0, stride=1,
                         lookahead=7, save_dtype="float32")
    report = train_value(folder, "tiny", train, heldout, prompts, tmp_path / "value", config, tmp_path / "features",
                         backbone=backbone)
    siblings = report["final"]["siblings"]
    assert siblings["pairs"] == 60 and siblings["accuracy"] >= 0.95, report["history"]["epochs"]
    assert RewardHead.load(tmp_path / "value").readout == "last"
    # the baseline beside it: keeping greedy's side (the trunk) is right where the trunk took the right marker,
    # and a head that reads the marker keeps the trunk about that often, not always
    trunk_right = sum(p.right.kind == "trunk" for p in sibling_pairs(heldout)) / 60
    assert report["keep_trunk"]["accuracy"] == pytest.approx(trunk_right) and 0.2 < trunk_right < 0.8
    assert abs(siblings["trunk_chosen"] - trunk_right) <= 1 - siblings["accuracy"] + 1e-9

    # the paper's sequence-wise Bradley–Terry head, trained on the same answers as (right, wrong) pairs
    cache = FeatureCache(tmp_path / "features")
    examples = {e.record.id: e for e in value_examples(train + heldout, prompts, 1, 512)}
    pairs = sibling_pairs(train)
    channel = initial_channel(folder, TrainConfig(width=32), None)
    optimizer = torch.optim.AdamW(channel.parameters(), lr=3e-3)
    for _ in range(6):
        for i in range(0, len(pairs), 16):
            part = pairs[i: i + 16]
            rc, _, mc = batch_rewards(channel, cache, [examples[p.right.id] for p in part])
            rr, _, mr = batch_rewards(channel, cache, [examples[p.wrong.id] for p in part])
            loss = pair_loss("seqwise_bt", rc * mc, mc, rr * mr, mr)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        rewards = {e.record.id: batch_rewards(channel, cache, [e])[0][0].tolist()
                   for e in examples.values() if e.record.split == "heldout"}
    by_last = choice_accuracy(sibling_pairs(heldout), lambda a, seen: read(rewards[a.id], seen, "last"), 7, 512)
    by_mean = choice_accuracy(sibling_pairs(heldout), lambda a, seen: read(rewards[a.id], seen, "mean"), 7, 512)
    assert by_mean["accuracy"] >= 0.9  # it did learn the marker: its mean over the answer sees it
    assert by_last["accuracy"] <= siblings["accuracy"] - 0.15  # but its last token is not trained to carry it


def test_the_pair_term_compares_siblings_where_sla_does():
    trunk = answer("p", "trunk", list(range(100, 160)), True, kind="trunk", finish="stop")
    fork = answer("p", "fork@20", list(range(100, 120)) + list(range(300, 340)), False, kind="fork",
                  parent="p#trunk", fork_at=20, fork_token=300)
    views = sibling_views(value_examples([trunk, fork], {"p": [7, 7]}, stride=16, limit=512), (10, 20, 30, 50))
    assert [(r.record.id, r.response.positions[i], w.record.id, w.response.positions[j]) for r, i, w, j in views] == [
        ("p#trunk", 29, "p#fork@20", 29), ("p#trunk", 39, "p#fork@20", 39), ("p#trunk", 49, "p#fork@20", 49)]


def test_best_of_n_reads_a_whole_answer_at_its_last_kept_position_or_by_the_mean_of_them():
    rewards = torch.tensor([[1.0, 2.0, 6.0, 9.0], [4.0, -2.0, 7.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])  # the 9 and the 7s are padding
    assert read_whole(rewards, mask, "last").tolist() == [6.0, -2.0]
    assert read_whole(rewards, mask, "mean").tolist() == [3.0, 1.0]


def test_candidate_views_pair_right_and_wrong_answers_of_one_problem_from_greedy_and_samples():
    trunk = answer("p", "trunk", list(range(100, 140)), True, kind="trunk", finish="stop")
    fork = answer("p", "fork@20", list(range(100, 120)) + list(range(300, 320)), False, kind="fork",
                  parent="p#trunk", fork_at=20, fork_token=300)
    samples = [answer("p", "s0", list(range(500, 530)), False), answer("p", "s1", list(range(600, 630)), True),
               answer("q", "s0", list(range(700, 730)), False)]
    views = candidate_views(value_examples([trunk, fork, *samples], {"p": [7], "q": [7]}, stride=16, limit=512))
    assert sorted((r.record.id, w.record.id) for r, w in views) == [("p#s1", "p#s0"), ("p#trunk", "p#s0")]


def test_the_consistency_term_pulls_each_value_toward_the_next_one_and_only_that_way():
    rewards = torch.tensor([[0.0, 2.0, 2.0, -1.0], [1.0, 1.0, 5.0, 5.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])  # row 0: 3 positions, row 1: 2
    consistency_term(rewards, mask).backward()
    grad = rewards.grad
    assert grad[0, 0] < 0 and grad[0, 1] == 0  # 0 rises toward 2; 2 already equals the next value (2)
    assert grad[0, 2] == 0 and grad[0, 3] == 0  # no successor kept, and padding
    assert torch.all(grad[1] == 0)  # 1 and 1 agree; the 5s are padding
    # the later value is the target, held fixed: moving it changes the term but gets no gradient
    lower = torch.tensor([[0.0, -2.0, -2.0, 0.0]], requires_grad=True)
    consistency_term(lower, mask[:1]).backward()
    assert lower.grad[0, 0] > 0 and lower.grad[0, 1] == 0


@pytest.mark.download
def test_a_value_head_can_be_kept_by_best_of_n_choices_under_the_mean_read_out(tiny, tmp_path):
    folder, backbone = tiny
    rng = random.Random(1)
    train, prompts = marker_task(rng, 200, "train")
    heldout, more = marker_task(rng, 40, "heldout")
    config = TrainConfig(loss="value", width=32, lr=3e-3, epochs=3, batch_size=16, warmup=0.0, stride=1,
                         lookahead=7, save_dtype="float32", readout="mean", keep_by="candidates")
    with pytest.raises(ValueError, match="keep_by candidates needs validation candidates"):
        train_value(folder, "tiny", train, heldout, prompts | more, tmp_path / "none", config, tmp_path / "features",
                    backbone=backbone)

    heldout = with_samples(rng, heldout)
    report = train_value(folder, "tiny", with_samples(rng, train), heldout, prompts | more, tmp_path / "value",
                         config, tmp_path / "features", backbone=backbone)
    by_epoch = [e["candidates"]["accuracy"] for e in report["history"]["epochs"]]
    assert report["kept_epoch"] == by_epoch.index(max(by_epoch)) and max(by_epoch) > by_epoch[0]
    assert report["final"]["candidates"]["pairs"] == 40 * 2 and report["final"]["candidates"]["accuracy"] >= 0.9
    assert RewardHead.load(tmp_path / "value").readout == "mean"

    # --candidate-weight: best-of-N's choice trained directly, on every train pair of a right and a wrong answer
    # (per problem a trunk and two samples, one of each marker, the fork left out: two pairs)
    term = dataclasses.replace(config, candidate_weight=1.0, epochs=2)
    report = train_value(folder, "tiny", with_samples(rng, train), heldout, prompts | more, tmp_path / "term", term,
                         tmp_path / "features", backbone=backbone)
    assert report["train_candidate_pairs"] == 200 * 2
    losses = [s["candidate_loss"] for s in report["history"]["steps"]]
    assert sum(losses[-5:]) / 5 < 0.5 * math.log(2) < losses[0]  # it falls from chance: it ranks right above wrong
    assert all(s["loss"] > s["value_loss"] for s in report["history"]["steps"])

    # `sla train --no-candidates`: the samples are not read (no backbone pass over them), the siblings still are
    siblings_only = TrainConfig(loss="value", width=32, lr=3e-3, epochs=1, batch_size=16, warmup=0.0, stride=1,
                                lookahead=7, save_dtype="float32", validate_candidates=False)
    final = train_value(folder, "tiny", train, heldout, prompts | more, tmp_path / "siblings-only", siblings_only,
                        tmp_path / "features-2", backbone=backbone)["final"]
    assert final["candidates"]["pairs"] == 0 and final["siblings"]["pairs"] == 40
    read = FeatureCache(tmp_path / "features-2").index
    assert len(read) == len(train) + 2 * 40  # train answers, and each validation trunk and fork, no sample


@pytest.mark.download
def test_sla_train_value_reads_a_bank_folder_from_the_command_line(tiny, tmp_path):
    """`sla train --loss value --bank`: the bank's files, its problems' prompts, the problem filter and the
    head's read-out wired together (what the head learns is tested above, on the same task)."""
    folder, _ = tiny
    rng, bank = random.Random(3), tmp_path / "bank"
    for split, items in (("train", train_items(24)), ("heldout", validation_items(8))):
        records, _ = marker_task(rng, len(items), split, items=[it.id for it in items])
        Collection(bank / FORKS).append(records)
    cmd = [sys.executable, "-m", "sla", "train", "--loss", "value", "--bank", str(bank), "--model", str(folder),
           "--out", str(tmp_path / "value"), "--features", str(tmp_path / "features"), "--width", "32",
           "--epochs", "2", "--batch-size", "8", "--warmup", "0", "--stride", "1", "--lookahead", "7",
           "--save-dtype", "float32", "--problems", "siblings", "--no-candidates", "--consistency-weight", "0.5",
           "--max-problems", "20"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "validation siblings" in done.stdout and "(8 pairs, 7 tokens past the fork; keeps the trunk" in done.stdout
    report = json.loads((tmp_path / "value" / "report.json").read_text())
    assert report["bank"] == str(bank) and report["config"]["problems"] == "siblings"
    assert report["problems"] == {"train": 20, "heldout": 8}  # --max-problems: the first 20 of 24
    assert report["config"]["consistency_weight"] == 0.5
    assert all(s["loss"] == pytest.approx(s["value_loss"] + 0.5 * s["consistency_loss"], rel=1e-5)
               for s in report["history"]["steps"])
    assert report["final"]["siblings"]["pairs"] == 8 and RewardHead.load(tmp_path / "value").readout == "last"
    refused = subprocess.run(cmd[:6] + ["--data", str(bank)] + cmd[8:], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--loss value trains on the sample bank" in refused.stderr


@pytest.mark.download
def test_sla_score_pairs_reads_a_bank_and_sets_each_head_beside_keeping_the_trunk(tiny, tmp_path, capsys):
    """`sla score-pairs HEAD --bank`: the validation answers of a bank folder scored by a head, with the baseline
    that always keeps greedy's side and how often the head keeps it, printed and in --json."""
    from sla.cli import main

    folder, _ = tiny
    bank, items = tmp_path / "bank", validation_items(6)
    records, _ = marker_task(random.Random(4), len(items), "heldout", items=[it.id for it in items])
    Collection(bank / FORKS).append(records)
    head = make_random_head(folder, tmp_path / "head", seed=2)
    assert main(["score-pairs", str(head), "--bank", str(bank), "--model", str(folder),
                 "--json", str(tmp_path / "scores.json")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "scores.json").read_text())
    expected = choice_accuracy(sibling_pairs(records), keep_trunk, 30, 512)
    assert result["keep_trunk"]["accuracy"] == pytest.approx(expected["accuracy"]) and expected["pairs"] == 6
    assert f"always keeping the trunk (greedy's side): siblings {expected['accuracy']:.3f}" in printed
    share = result["heads"][str(head)]["trunk_chosen"]
    assert set(share) == {"mean", "last"} and all(0.0 <= v <= 1.0 for v in share.values())
    assert f"{head}: keeps the trunk of {share['mean']:.3f} of the siblings by mean" in printed
    # --domains picks whose validation answers are read: MBPP's collection beside GSM's
    mbpp = [it.id for it in load_set("mbpp-validation", None).items[:4]]
    code, _ = marker_task(random.Random(5), len(mbpp), "heldout", items=mbpp)
    code = [dataclasses.replace(r, domain="mbpp", answer=None, given=None) for r in code]
    Collection(bank / collections("mbpp")[1]).append(code)
    for domains, pairs in (("mbpp", 4), ("gsm,mbpp", 10)):
        assert main(["score-pairs", str(head), "--bank", str(bank), "--model", str(folder), "--domains", domains,
                     "--json", str(tmp_path / "scores.json")]) == 0
        assert json.loads((tmp_path / "scores.json").read_text())["keep_trunk"]["pairs"] == pairs


@pytest.mark.download
def test_the_pair_term_trains_siblings_apart_at_their_views(tiny, tmp_path):
    """With only the pair term's pressure on the positions past the fork (the value labels there say the same),
    its loss falls from log 2 and the head ranks held-out siblings; a wrong index (a shared position) could not."""
    folder, backbone = tiny
    rng = random.Random(2)
    train, prompts = marker_task(rng, 400, "train", tail=26)
    heldout, more = marker_task(rng, 40, "heldout", tail=26)
    config = TrainConfig(loss="value", width=32, lr=3e-3, epochs=6, batch_size=16, warmup=0.0, stride=8,
                         lookahead=10, save_dtype="float32", pair_weight=1.0)
    report = train_value(folder, "tiny", train, heldout, prompts | more, tmp_path / "value", config,
                         tmp_path / "features", backbone=backbone)
    assert report["train_sibling_views"] == 400 * 2  # 10 and 20 tokens past the fork fit in 31 tokens; 30 not
    steps = report["history"]["steps"]
    assert steps[0]["pair_loss"] > 0.5 and max(s["pair_loss"] for s in steps[-5:]) < 0.35  # log 2 if equal
    assert report["final"]["siblings"]["accuracy"] >= 0.85  # measured 0.925


@pytest.mark.download
def test_bank_scoring_reads_each_answer_as_far_as_a_choice_does(tmp_path):
    """`sla score-pairs --bank`'s scores (one backbone pass per problem, prompt shared) equal the transformers
    reference applied to each answer alone, under both read-outs and at every look-ahead of the curve."""
    folder = make_tiny_model("qwen2", tmp_path / "tiny", seed=4)
    backbone = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    head = RewardHead.load(make_random_head(folder, tmp_path / "head", seed=5))
    records, prompts = marker_task(random.Random(1), 12, "heldout")
    trunk = next(r for r in records if r.id == "heldout/0#trunk")
    records.append(answer("heldout/0", "s0", [3001, 3002, 3003], not trunk.correct, split="heldout"))  # a candidate
    # and a sample that repeats greedy's answer token for token (common on code): one pass, both scored
    records.append(answer("heldout/0", "s1", list(trunk.token_ids), trunk.correct, split="heldout"))
    scored = score_answers(backbone, {"h": head}, records, prompts, lookahead=3, limit=512, curve=(1, None))
    result = scored["heads"]["h"]
    assert scored["keep_trunk"] == choice_accuracy(sibling_pairs(records), keep_trunk, 3, 512)
    channel = head.channel().eval()

    def reference(a: BankRecord, seen: int, readout: str) -> float:
        rewards = reference_rewards(backbone, channel, prompts[a.item] + list(a.token_ids))[len(prompts[a.item]):]
        return read(rewards.tolist(), seen, readout)

    for readout in ("mean", "last"):
        score = functools.partial(reference, readout=readout)
        expected = choice_accuracy(sibling_pairs(records), score, 3, 512)
        assert result["siblings"][readout]["accuracy"] == pytest.approx(expected["accuracy"])
        assert result["siblings"][readout]["pairs"] == 12
        assert result["trunk_chosen"][readout] == pytest.approx(trunk_share(sibling_pairs(records), score, 3, 512))
        for lookahead, key in ((1, "1"), (None, "all")):
            expected = choice_accuracy(sibling_pairs(records), score, lookahead, 512)
            assert result["siblings_by_lookahead"][key][readout]["accuracy"] == pytest.approx(expected["accuracy"])
        expected = best_of_n_replay(records, score, 512)
        got = result["best_of_n"][readout]
        assert got["problems"] == 1 and got["pick"]["accuracy"] == expected["pick"]["accuracy"]
        expected = best_of_n_replay(records, score, 512, kind="fork")
        got = result["fork_rollouts"][readout]
        assert got["problems"] == expected["problems"] > 0
        assert [got["pick"][k] for k in ("fixed", "broke")] == [expected["pick"][k] for k in ("fixed", "broke")]
        expected = choice_accuracy(candidate_pairs(records, "fork"), score, None, 512)
        assert result["fork_candidates"][readout]["accuracy"] == pytest.approx(expected["accuracy"])
        expected = fork_over_greedy(sibling_pairs(records), score, 3, 512)
        got = result["fork_over_greedy"][readout]["margins"]
        assert [m["margin"] for m in got] == pytest.approx([m["margin"] for m in expected["margins"]], rel=1e-2)
        assert [m["taken"] for m in got] == [m["taken"] for m in expected["margins"]]
    assert result["candidates"]["mean"]["pairs"] == 2 and result["readout"] == "mean"
    assert result["lookahead_accuracy"] == result["siblings"]["mean"]["accuracy"]
