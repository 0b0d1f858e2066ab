"""`sla train` on a tiny model: it learns a separable preference, writes a head the server loads, and that
head gives in vLLM the same per-token rewards as the training-side (transformers) model."""

from __future__ import annotations

import json
import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from vllm import SamplingParams

from sla_engine.engine import EngineConfig
from sla_engine.reward import RewardHead
from sla_engine.search import complete
from sla_pipeline.data.jsonl import JsonlWriter
from sla_pipeline.data.pairs import Pair
from sla_pipeline.training.calibration import calibrate_head, measure, own_answers
from sla_pipeline.training.config import TrainConfig
from sla_pipeline.training.features import FeatureCache, TokenizedResponse, tokenize
from sla_pipeline.training.scoring import score_pairs
from sla_pipeline.training.trainer import EncodedPair, evaluate, train
from tests.helpers.engine_thread import EngineThread
from tests.helpers.reference import layer_inputs_and_final, reference_rewards
from tests.helpers.tiny_models import make_tiny_model

WORDS = "apple river stone cloud paper green window seven market quiet yellow table".split()
MARKER = " banana"  # one token in the Qwen vocabulary; only chosen answers contain it


def separable_pairs(n: int, split: str, seed: int) -> list[Pair]:
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        words = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
        rejected = words(rng.randint(6, 14))
        chosen = words(rng.randint(2, 6)) + MARKER + " " + words(rng.randint(2, 6))
        item = f"alpaca/{split}-{i}"
        pairs.append(Pair(f"{item}#0>1", "alpaca", item, split, ({"role": "user", "content": words(5) + "?"},),
                          chosen, rejected, {"method": "synthetic_marker"}))
    return pairs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    model = make_tiny_model("qwen2", root / "tiny")
    assert len(AutoTokenizer.from_pretrained(model)(MARKER, add_special_tokens=False)["input_ids"]) == 1
    data = root / "data" / "pairs"
    for split, n, seed in (("train", 192, 1), ("heldout", 64, 2)):
        with JsonlWriter(data / f"{split}.jsonl") as w:
            for p in separable_pairs(n, split, seed):
                w.write(p.to_json())
        if split == "train":  # one broken line: reported and skipped, the run goes on
            with open(data / "train.jsonl", "a") as fh:
                fh.write('{"id": "broken", "source": \n')
    config = TrainConfig(width=32, lr=3e-3, epochs=4, batch_size=16, max_response_tokens=32, save_dtype="bfloat16")
    report = train(model, "tiny-qwen2", data / "train.jsonl", data / "heldout.jsonl", root / "head", config)
    return model, root / "head", report


def test_training_learns_a_separable_preference(trained):
    _, head, report = trained
    first, last = report["history"]["epochs"][0], report["history"]["epochs"][-1]
    assert first["pair_accuracy"] < 0.9, "the untrained head must not already separate the pairs"
    assert last["pair_accuracy"] >= 0.95
    assert last["heldout_loss"] < 0.5 * first["heldout_loss"]
    steps = report["history"]["steps"]
    assert sum(s["loss"] for s in steps[-5:]) < sum(s["loss"] for s in steps[:5])
    assert last["autrc"] > first["autrc"]
    assert report["pairs"] == {"train": 192, "heldout": 64}
    assert len(report["skipped_lines"]) == 1 and ":193:" in report["skipped_lines"][0]
    assert (head / "report.png").stat().st_size > 10_000
    assert json.loads((head / "report.json").read_text())["final"] == last


def test_the_saved_head_is_calibrated_on_the_policy_answers_without_changing_its_ranking(trained, tmp_path):
    model, head, report = trained
    loaded = RewardHead.load(head)
    assert loaded.calibration is not None and report["calibration"] == loaded.calibration.to_json()
    assert loaded.calibration.std > 0 and loaded.calibration.sources == ("gsm", "gsm_fork", "alpaca")
    tokenizer = AutoTokenizer.from_pretrained(model)
    data = head.parent / "data" / "pairs"
    pairs = [Pair.from_json(json.loads(line)) for line in (data / "train.jsonl").read_text().splitlines()[:-1]]
    seqs = own_answers(tokenizer, pairs, 32)
    assert loaded.calibration.tokens == sum(len(s.response_ids) for s in seqs)
    cache = FeatureCache(head / "features")
    served = measure(loaded.channel(), cache, seqs, ("alpaca",))  # the saved (bf16) head, as served
    assert abs(served.mean) < 0.05 and abs(served.std - 1) < 0.05
    heldout = [Pair.from_json(json.loads(line)) for line in (data / "heldout.jsonl").read_text().splitlines()]
    encoded = [EncodedPair(tokenize(tokenizer, p.prompt, p.chosen, 32), tokenize(tokenizer, p.prompt, p.rejected, 32))
               for p in heldout]
    cache.fill(None, [s for e in encoded for s in (e.chosen, e.rejected)])  # all cached: no backbone needed
    after = evaluate(loaded.channel(), cache, encoded, TrainConfig(max_response_tokens=32))
    # the same ranking as the raw fp32 head the report measured (up to one pair flipped by bf16 storage)
    assert after["pair_accuracy"] == pytest.approx(report["final"]["pair_accuracy"], abs=1 / 64)
    assert after["autrc"] == pytest.approx(report["final"]["autrc"], abs=1 / 64)
    # recalibrating composes with the folded map: the file still records raw -> served, rewards stay standard
    again = tmp_path / "again"
    loaded.save(again, torch.bfloat16)
    total = calibrate_head(model, again, data / "train.jsonl", head / "features", 32)
    assert abs(total.mean - loaded.calibration.mean) < 0.05 * loaded.calibration.std
    assert abs(total.std / loaded.calibration.std - 1) < 0.05
    twice = measure(RewardHead.load(again).channel(), cache, seqs, ("alpaca",))
    assert abs(twice.mean) < 0.02 and abs(twice.std - 1) < 0.02


def test_training_on_from_a_head_starts_where_it_ended(trained, tmp_path):
    """`--init`: epoch 0 of the new run is the saved head with its calibration taken out, i.e. the first run's
    final held-out loss and accuracy (up to bf16 storage); a head of another width is refused."""
    model, head, report = trained
    data = head.parent / "data" / "pairs"
    config = TrainConfig(width=32, lr=1e-3, epochs=1, batch_size=16, max_response_tokens=32)
    again = train(model, "tiny-qwen2", data / "train.jsonl", data / "heldout.jsonl", tmp_path / "on", config,
                  cache_dir=head / "features", init=head)
    start, end = again["history"]["epochs"][0], report["final"]
    assert start["heldout_loss"] == pytest.approx(end["heldout_loss"], rel=0.05)
    assert start["pair_accuracy"] == pytest.approx(end["pair_accuracy"], abs=1 / 64)
    assert again["init"] == str(head) and again["final"]["pair_accuracy"] >= 0.95
    fresh = train(model, "tiny-qwen2", data / "train.jsonl", data / "heldout.jsonl", tmp_path / "fresh", config,
                  cache_dir=head / "features")
    assert fresh["history"]["epochs"][0]["heldout_loss"] > 2 * start["heldout_loss"]  # a new head starts at chance
    with pytest.raises(ValueError, match="width 32"):
        train(model, "tiny-qwen2", data / "train.jsonl", data / "heldout.jsonl", tmp_path / "x",
              TrainConfig(width=64, max_response_tokens=32), cache_dir=head / "features", init=head)


def late_marker_siblings(n: int, split: str, seed: int) -> list[Pair]:
    """Sibling pairs: a shared start, then 4 random words each, and only after those the chosen side's marker."""
    rng = random.Random(seed)
    words = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    pairs = []
    for i in range(n):
        start, item = words(4), f"gsm/{split}-{i}"
        chosen, rejected = f"{start} {words(4)}{MARKER} {words(3)}", f"{start} {words(4)} {words(4)}"
        pairs.append(Pair(f"{item}#fork", "gsm_fork", item, split, ({"role": "user", "content": words(5) + "?"},),
                          chosen, rejected, {"method": "synthetic_late_marker"}))
    return pairs


def test_a_lookahead_head_learns_only_from_what_sla_would_have_seen(trained, tmp_path):
    """With --lookahead 2 the loss sees two tokens past the fork, never the marker (past the fourth word), so
    nothing is learnt; the same data with whole responses is learnt. Held-out accuracy is measured the same way."""
    model, _, _ = trained
    data = tmp_path / "pairs"
    for split, n, seed in (("train", 160, 3), ("heldout", 64, 4)):
        with JsonlWriter(data / f"{split}.jsonl") as w:
            for p in late_marker_siblings(n, split, seed):
                w.write(p.to_json())
    runs = {}
    for lookahead in (None, 2):
        config = TrainConfig(width=32, lr=3e-3, epochs=4, batch_size=16, max_response_tokens=32, lookahead=lookahead)
        runs[lookahead] = train(model, "tiny-qwen2", data / "train.jsonl", data / "heldout.jsonl",
                                tmp_path / f"head-{lookahead}", config, cache_dir=tmp_path / "features")
    assert runs[None]["final"]["pair_accuracy"] >= 0.9
    assert runs[2]["config"]["lookahead"] == 2 and runs[2]["final"]["pair_accuracy"] < 0.75
    # score-pairs' SLA view of the lookahead head agrees with its training report
    scores = score_pairs(model, tmp_path / "head-2", data / "heldout.jsonl", tmp_path / "features", 32, lookahead=2)
    assert scores["gsm_fork"]["lookahead_accuracy"] == pytest.approx(runs[2]["final"]["pair_accuracy"], abs=2 / 64)


def test_score_pairs_reports_the_trained_accuracy_per_source(trained, tmp_path, capsys):
    """`sla score-pairs` on the held-out pairs plus the same pairs reversed under another source name."""
    from sla.cli import main

    model, head, report = trained
    heldout = [Pair.from_json(json.loads(line))
               for line in (head.parent / "data" / "pairs" / "heldout.jsonl").read_text().splitlines()]
    reversed_ = [Pair(p.id + "-r", "gsm_fork", p.item, p.split, p.prompt, p.rejected, p.chosen, {}) for p in heldout]
    pairs = tmp_path / "mixed.jsonl"
    with JsonlWriter(pairs) as w:
        for p in heldout + reversed_:
            w.write(p.to_json())
    out = tmp_path / "scores.json"
    assert main(["score-pairs", str(head), "--pairs", str(pairs), "--model", str(model),
                 "--features", str(head / "features"), "--max-response-tokens", "32", "--lookahead", "40",
                 "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert {k: v["pairs"] for k, v in scores.items()} == {"all": 128, "alpaca": 64, "gsm_fork": 64}
    accuracy = scores["alpaca"]["pair_accuracy"]
    assert accuracy == pytest.approx(report["final"]["pair_accuracy"], abs=1 / 64)  # the saved head, bf16
    assert scores["gsm_fork"]["pair_accuracy"] == pytest.approx(1 - accuracy)  # each pair the other way round
    assert scores["all"]["pair_accuracy"] == pytest.approx(0.5)
    low, high = scores["alpaca"]["ci95"]
    assert low <= accuracy <= high and high - low < 0.2
    # intervals resample items: each item's pair comes with its reversal, so every resample stays at 0.5
    assert scores["all"]["ci95"] == scores["all"]["lookahead_ci95"] == [0.5, 0.5]
    # 40 tokens past the parting sees all of every (≤ 32-token) response: the full-length accuracy
    assert all(v["lookahead_accuracy"] == v["pair_accuracy"] for v in scores.values())
    assert "gsm_fork:   64 pairs" in capsys.readouterr().out
    assert main(["score-pairs", str(head), "--pairs", str(pairs), "--model", str(model),
                 "--features", str(head / "features"), "--max-response-tokens", "32", "--lookahead", "1",
                 "--json", str(out)]) == 0
    first = json.loads(out.read_text())  # one token past the parting: another ranking, each pair still reversible
    assert first["gsm_fork"]["lookahead_accuracy"] == pytest.approx(1 - first["alpaca"]["lookahead_accuracy"])
    assert first["alpaca"]["lookahead_accuracy"] != first["alpaca"]["pair_accuracy"]
    assert main(["score-pairs", str(head), "--pairs", str(pairs), "--model", str(model),
                 "--features", str(head / "features"), "--lookahead", "0"]) == 2
    with pytest.raises(SystemExit):  # a look-ahead curve names positive token counts or "all"
        main(["score-pairs", str(head), "--bank", str(tmp_path), "--curve", "10,0"])


def test_score_pairs_replays_best_of_n_and_compares_two_heads(trained, tmp_path, capsys):
    """The same head with its output negated ranks every pair the other way round: `--compare` counts the pairs
    each gets right and their difference; the pick (top mean reward per item) follows the ranking."""
    from sla.cli import main

    model, head, report = trained
    flipped = RewardHead.load(head)
    flipped = RewardHead(flipped.config, flipped.base_model, flipped.base_model_sha256,
                         {k: -v if k.startswith("head.") else v for k, v in flipped.state_dict.items()})
    flipped.save(tmp_path / "flipped")
    pairs = head.parent / "data" / "pairs" / "heldout.jsonl"  # one pair per item
    out = tmp_path / "scores.json"
    assert main(["score-pairs", str(head), "--pairs", str(pairs), "--model", str(model), "--features",
                 str(head / "features"), "--max-response-tokens", "32", "--compare", str(tmp_path / "flipped"),
                 "--json", str(out)]) == 0
    scores = json.loads(out.read_text())["alpaca"]
    right = round(scores["pair_accuracy"] * 64)
    assert right >= 58 and scores["pick"] == {"items": 64, "right": right}
    compared = scores["compare"]
    assert compared["pair_accuracy"] == pytest.approx(1 - scores["pair_accuracy"])
    assert compared["pick"] == {"items": 64, "right": 64 - right}
    assert (compared["only_head"], compared["only_other"]) == (right, 64 - right)
    assert compared["gain"] == pytest.approx((2 * right - 64) / 64)
    low, high = compared["gain_ci95"]
    assert 0 < low <= compared["gain"] <= high
    assert f"only {head} right on {right} pairs" in capsys.readouterr().out


def test_a_pick_is_right_only_when_no_pair_rejects_the_top_answer():
    from sla_pipeline.training.scoring import picks

    prompt = ({"role": "user", "content": "2+2?"},)
    pair = lambda item, chosen, rejected: Pair(f"{item}-{chosen}-{rejected}", "gsm", item, "heldout", prompt,  # noqa: E731
                                               chosen, rejected)
    pairs = [pair("a", "4", "5"), pair("a", "4", "6"), pair("a", "four", "5"), pair("a", "four", "6"),
             pair("b", "7", "8"), pair("c", "1", "2")]
    # item a: "6" has the top mean (wrong); b: "7" (right); c: chosen and rejected tie, the first met wins
    assert picks(pairs, [0.1, 0.1, 0.3, 0.3, 0.9, 0.5], [0.2, 0.8, 0.2, 0.8, -1.0, 0.5]) == \
        {"a": False, "b": True, "c": True}
    assert picks(pairs[:4], [0.1, 0.1, 0.9, 0.9], [0.2, 0.8, 0.2, 0.8]) == {"a": True}  # "four" on top


def test_cached_features_are_reused_by_a_second_run(trained, tmp_path):
    model, head, report = trained
    data = head.parent / "data" / "pairs"
    again = train(model, "tiny-qwen2", data / "train.jsonl", data / "heldout.jsonl", tmp_path,
                  TrainConfig(width=32, lr=3e-3, epochs=1, batch_size=16, max_response_tokens=32),
                  cache_dir=head / "features", backbone=object())  # would fail if the backbone were run
    assert again["pairs"] == report["pairs"]


@pytest.mark.engine
def test_cached_features_equal_a_full_forward_when_responses_share_a_prompt(tmp_path):
    folder = make_tiny_model("qwen2", tmp_path / "model")
    backbone = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    a, b = (5, 6, 7, 8), (9, 10, 11)
    seqs = [TokenizedResponse("a1", a, (20, 21, 22, 23, 24)), TokenizedResponse("a2", a, (30,)),
            TokenizedResponse("a3", a, (40, 41, 42)), TokenizedResponse("b1", b, (50, 51))]
    cache = FeatureCache(tmp_path / "features")
    cache.fill(backbone, seqs, batch_tokens=8)  # several batches on one prompt's cache
    for s in seqs:
        with torch.no_grad():
            layers, final = layer_inputs_and_final(backbone, torch.tensor([s.prompt_ids + s.response_ids]))
        full = torch.stack(layers + [final])[:, 0, len(s.prompt_ids):]
        got = cache.get(s.key)
        assert got.shape == full.shape
        torch.testing.assert_close(got.float(), full.to(torch.bfloat16).float(), atol=2e-2, rtol=2e-2)


def test_filling_a_cache_never_replaces_a_shard_another_run_wrote(trained, tmp_path):
    """Two runs filling one cache at once each saw the same shard count and named their shards alike, so one
    replaced the other's and its index pointed at tensors that were gone. Here the other run's shard is the
    only one, named as the first would have been had a shard before it been removed."""
    from safetensors.torch import save_file

    model, _, _ = trained
    backbone = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    folder = tmp_path / "features"
    folder.mkdir()
    theirs = torch.ones(2, 3)
    save_file({"theirs": theirs}, str(folder / "shard-00001.safetensors"))
    (folder / "index.jsonl").write_text(json.dumps({"key": "theirs", "shard": "shard-00001.safetensors"}) + "\n")
    FeatureCache(folder).fill(backbone, [TokenizedResponse("mine", (5, 6, 7), (20, 21))])
    again = FeatureCache(folder)
    torch.testing.assert_close(again.get("theirs"), theirs)
    assert again.get("mine").shape[1] == 2


def test_trained_head_gives_the_same_rewards_in_vllm_as_the_training_side_model(trained):
    model, head, _ = trained
    loaded = RewardHead.load(head)
    assert next(iter(loaded.state_dict.values())).dtype == torch.bfloat16  # stored small, computed in fp32
    backbone = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    channel = loaded.channel().eval()
    runner = EngineThread(EngineConfig(model_path=str(model), served_name="tiny", reward_head=str(head),
                                       max_model_len=1024, kv_cache_gib=0.5, warmup=False))
    try:
        tok = AutoTokenizer.from_pretrained(model)
        prompts = [tok.apply_chat_template([{"role": "user", "content": f"{w} banana {w}?"}],
                                           add_generation_prompt=True,
                                           tokenize=True, return_dict=False) for w in WORDS[:3]]
        params = SamplingParams(max_tokens=16, temperature=0.0, ignore_eos=True, detokenize=False)
        for prompt in prompts:
            res = runner.run(complete(runner.engine, list(prompt), params))
            ref = reference_rewards(backbone, channel, list(prompt) + res.tokens)[len(prompt):]
            got = torch.tensor(res.rewards)
            assert ref.std() > 1e-2
            assert (got - ref).abs().max().item() <= 1e-4
    finally:
        runner.close()
