"""The vote-scaling analysis (sla_pipeline/analyses/vote_scaling.py) on crafted bank answers."""

from __future__ import annotations

import json

from sla_pipeline.analyses.vote_scaling import main, vote_curve
from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.problems import FORKS, SAMPLES
from sla_pipeline.bank.record import BankRecord


def answer(item: str, name: str, given: float | None, split: str = "train", finish: str = "stop") -> BankRecord:
    kind = "trunk" if name == "trunk" else "sample"
    return BankRecord(f"{item}#{name}", kind, split, item, None if kind == "trunk" else 1, "x", (1, 2), finish,
                      7.0, given, given == 7.0)


def test_the_vote_over_greedy_and_the_first_samples_grows_with_n():
    records = [
        # greedy wrong; the first sample alone ties it (greedy wins the tie); two right samples outvote it
        answer("a", "trunk", 3.0), answer("a", "s0", 7.0), answer("a", "s1", 7.0),
        # greedy right; two samples agreeing on a wrong number outvote it at N = 3
        answer("b", "trunk", 7.0), answer("b", "s0", 5.0), answer("b", "s1", 5.0),
        # greedy right but cut at max_tokens: a finished sample comes first in a tie
        answer("c", "trunk", 7.0, finish="length"), answer("c", "s0", 4.0), answer("c", "s1", None),
        answer("d", "trunk", 7.0, split="heldout"), answer("d", "s0", 7.0, split="heldout"),
        answer("e", "trunk", 7.0),  # no samples: not a best-of-N problem
    ]
    curve = vote_curve(records, "train")
    assert (curve["problems"], curve["samples"], curve["greedy"]) == (3, 2, 2 / 3)
    two, three = curve["by_n"][2], curve["by_n"][3]
    assert (two["fixed"], two["broke"], two["oracle"]) == (0, 1, 1.0)  # c: the finished wrong sample wins 1-1
    assert (three["fixed"], three["broke"], three["accuracy"]) == (1, 2, 1 / 3)  # c: 4 vs 7, no number never votes
    assert vote_curve(records, "heldout")["by_n"][2]["accuracy"] == 1.0
    assert vote_curve([answer("e", "trunk", 7.0)], "train") == {"split": "train", "problems": 0}


def test_the_command_reads_a_bank_and_writes_its_curves(tmp_path, capsys):
    Collection(tmp_path / SAMPLES).append([answer("a", "s0", 7.0), answer("a", "s1", 7.0)])
    Collection(tmp_path / FORKS).append([answer("a", "trunk", 3.0)])
    assert main(["--bank", str(tmp_path), "--splits", "train,heldout", "--json", str(tmp_path / "v.json")]) == 0
    written = json.loads((tmp_path / "v.json").read_text())
    assert [c["problems"] for c in written["curves"]] == [1, 0]
    assert written["curves"][0]["by_n"]["3"]["fixed"] == 1
    out = capsys.readouterr().out
    assert "best-of-3 vote 1.000, +100.0 points" in out and "heldout: no problem" in out
