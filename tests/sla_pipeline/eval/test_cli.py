"""`sla eval --limit 3` end to end: the real CLI against a real `sla serve` (the test model with a random
head), the official openai client, a real judge engine (the test model again: the mechanics, not the quality)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sla_engine.store import ModelStore
from sla_pipeline.bank.problems import validation_items
from sla_pipeline.eval.sets import load_set
from tests.helpers.paths import ROOT
from tests.helpers.servers import TEST_MODEL, start_server, stop_server
from tests.helpers.tiny_models import make_random_head

SLA = {"strategy": "sla", "width": 2, "chunk": 4, "depth": 1}


@pytest.fixture(scope="module")
def sla_server(tmp_path_factory):
    folder = ModelStore().pull(TEST_MODEL)
    tmp = tmp_path_factory.mktemp("eval-server")
    proc, live = start_server(TEST_MODEL, tmp / "serve.log", extra=(
        "--reward-head", str(make_random_head(folder, tmp / "head", seed=3)), "--max-model-len", "2048"))
    yield live
    stop_server(proc)


def sla_eval(live, out, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sla", "eval", "--base-url", live.base_url, "--model", live.model,
           "--out", str(out), "--limit", "3", "--max-tokens", "24", "--judge", TEST_MODEL, "--concurrency", "4",
           "--strategy", 'greedy={"strategy": "greedy"}', "--strategy", f"sla-2-4-1={json.dumps(SLA)}",
           "--unvalidated-judge", *extra]  # the test model has never been through `sla judge-check`
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.mark.engine
def test_sla_eval_limit_3_writes_a_valid_report_and_resumes(sla_server, tmp_path):
    out = tmp_path / "eval"
    done = sla_eval(sla_server, out)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    assert report["baseline"] == "greedy" and list(report["strategies"]) == ["greedy", "sla-2-4-1"]
    assert report["sets"] == {"alpaca": {"kind": "judged", "items": 3}, "mtbench": {"kind": "judged", "items": 3},
                              "gsm": {"kind": "checked", "items": 3}}
    greedy, sla = report["strategies"]["greedy"], report["strategies"]["sla-2-4-1"]
    assert greedy["equity"] == {}  # the baseline is not compared with itself
    for name in ("alpaca", "mtbench"):
        e = sla["equity"][name]
        assert e["win"] + e["tie"] + e["loss"] == 3 and e["ci95"][0] <= e["equity"] <= e["ci95"][1]
    assert sla["accuracy"]["gsm"]["total"] == greedy["accuracy"]["gsm"]["total"] == 3
    gain = sla["gain"]["gsm"]  # paired with greedy's answers to the same problems
    assert greedy["gain"] == {} and gain["fixed"] - gain["broke"] == sla["accuracy"]["gsm"]["correct"] - \
        greedy["accuracy"]["gsm"]["correct"]
    assert greedy["cost"]["generated_per_emitted"] == 1.0  # greedy generates exactly what it emits
    assert sla["cost"]["generated_per_emitted"] > 1.5  # look-ahead: 2 candidates, 1 chunk deep
    assert sla["cost"]["answers"] == 9 and sla["cost"]["mean_ttft_s"] > 0
    answers = [json.loads(line) for line in (out / "answers" / "sla-2-4-1" / "alpaca.jsonl").read_text().splitlines()]
    assert len(answers) == 3 and all(0 < a["tokens_emitted"] <= 24 for a in answers)
    assert "| `sla-2-4-1` |" in (out / "report.md").read_text() and (out / "report.png").stat().st_size > 0
    # rerun: everything comes from the cache, nothing is asked again, the same report comes out
    files = {p: p.read_text() for p in out.rglob("*.jsonl")}
    again = sla_eval(sla_server, out)
    assert again.returncode == 0, again.stderr[-4000:]
    assert {p: p.read_text() for p in out.rglob("*.jsonl")} == files
    assert json.loads((out / "report.json").read_text()) == report
    assert report["judge_method"] == "pointwise" and "(pointwise)" in (out / "report.md").read_text()
    assert report["judge_validation"]["passed"] is False and report["judge_validation"]["agreement"] is None
    assert "**The equities above are not evidence**" in (out / "report.md").read_text()
    # another judge method judges the same answers afresh into its own verdicts; the pointwise ones stay
    pairwise = sla_eval(sla_server, out, "--sets", "alpaca", "--judge-method", "pairwise")
    assert pairwise.returncode == 0, pairwise.stderr[-4000:]
    again = json.loads((out / "report.json").read_text())
    assert again["judge_method"] == "pairwise" and list(again["sets"]) == ["alpaca"]
    e = again["strategies"]["sla-2-4-1"]["equity"]["alpaca"]
    assert e["win"] + e["tie"] + e["loss"] == 3

    def lines(method: str) -> int:
        path = out / "verdicts" / method / "sla-2-4-1" / "alpaca.jsonl"
        return len(path.read_text().splitlines()) if path.exists() else 0

    assert lines("pointwise") == lines("pairwise")  # one verdict per answer that differs from greedy's
    assert all(p.read_text() == text for p, text in files.items())


@pytest.mark.engine
def test_sla_eval_grades_code_and_instructions_through_the_server(sla_server, tmp_path):
    """mbpp-validation and ifeval-validation, --limit 3: answers graded by their checkers (MBPP's asserts in
    the sandbox, IFEval's instructions), the report giving accuracy, paired gain and the checks passed."""
    out = tmp_path / "eval"
    done = sla_eval(sla_server, out, "--sets", "mbpp-validation,ifeval-validation")
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    assert report["sets"] == {"mbpp-validation": {"kind": "checked", "items": 3},
                              "ifeval-validation": {"kind": "checked", "items": 3}}
    ifeval = load_set("ifeval-validation", None).items[:3]
    for name, s in report["strategies"].items():
        for set_name in report["sets"]:
            assert s["accuracy"][set_name]["total"] == 3
            graded = (out / "grades" / name / f"{set_name}.jsonl").read_text().splitlines()
            grades = [json.loads(line) for line in graded]
            assert len(grades) == 3 and all(g["correct"] == all(g["checks"]) for g in grades)
        # every IFEval instruction is a check: instruction-level accuracy counts them all
        assert s["checks"]["ifeval-validation"]["total"] == sum(len(it.meta["instructions"]) for it in ifeval)
        assert s["checks"]["mbpp-validation"]["total"] == 9  # three asserts per MBPP problem
    sla, greedy = report["strategies"]["sla-2-4-1"], report["strategies"]["greedy"]
    gain = sla["gain"]["ifeval-validation"]
    assert gain["fixed"] - gain["broke"] == (sla["accuracy"]["ifeval-validation"]["correct"]
                                             - greedy["accuracy"]["ifeval-validation"]["correct"])
    assert "ifeval-validation checks passed" in (out / "report.md").read_text()


def test_sla_eval_says_why_when_the_server_is_unreachable(tmp_path):
    cmd = [sys.executable, "-m", "sla", "eval", "--base-url", "http://127.0.0.1:9", "--out", str(tmp_path),
           "--limit", "1", "--sets", "gsm"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "cannot reach the server" in done.stderr


def test_sla_eval_refuses_to_judge_with_the_packaged_judge_that_failed_its_check(tmp_path):
    """The committed judges/check/report.json: the 1.5B judge's best method is below the bar."""
    cmd = [sys.executable, "-m", "sla", "eval", "--base-url", "http://127.0.0.1:9", "--out", str(tmp_path),
           "--limit", "1", "--sets", "alpaca,gsm"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2 and "failed `sla judge-check`: agreement 0.52 on 330 pairs" in done.stderr
    assert "cannot reach the server" not in done.stderr


@pytest.mark.download
def test_eval_sets_are_held_out_only_and_sized():
    alpaca, mtbench, gsm = load_set("alpaca", 100), load_set("mtbench", None), load_set("gsm", 200)
    assert len(alpaca.items) == 100 and len(gsm.items) == 200 and len(mtbench.items) == 65
    assert all(it.split == "heldout" for s in (alpaca, mtbench, gsm) for it in s.items)
    assert all(len(it.messages) == 1 for it in mtbench.items)  # first turns
    assert len({it.id for it in gsm.items}) == 200 and all(it.answer is not None for it in gsm.items)
    # the validation set is the sample bank's validation problems: held-out templates, never a test question
    validation = load_set("gsm-validation", 60)
    assert [it.id for it in validation.items] == [it.id for it in validation_items(60)] and validation.kind == "checked"
    asked = {it.messages[-1]["content"] for it in gsm.items}
    assert not asked & {it.messages[-1]["content"] for it in validation.items}
    names = ("mbpp", "mbpp-validation", "ifeval", "ifeval-validation")
    sizes = {name: len(load_set(name, None).items) for name in names}
    assert sizes == {"mbpp": 164, "mbpp-validation": 98, "ifeval": 337, "ifeval-validation": 204}
    for domain in ("mbpp", "ifeval"):
        test, validation = load_set(domain, None), load_set(f"{domain}-validation", None)
        assert {it.split for it in test.items} == {"test"} and {it.split for it in validation.items} == {"validation"}
