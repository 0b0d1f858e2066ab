"""The early-stopped vote replayed on crafted bank answers (sla_pipeline/analyses/vote_stopping.py): it draws
in the server's batches, stops where the server's rule says, and counts what it saved."""

from __future__ import annotations

from sla_engine.search.config import BestOfNConfig
from sla_pipeline.analyses.vote_stopping import drawn, replay
from sla_pipeline.bank.record import BankRecord


def answer(item: str, name: str, given: float | None, tokens: int = 10) -> BankRecord:
    kind = "trunk" if name == "trunk" else "sample"
    return BankRecord(f"{item}#{name}", kind, "train", item, None if kind == "trunk" else 1, "x",
                      tuple(range(tokens)), "stop", 7.0, given, given == 7.0)


def problem(item: str, givens: list[float | None]) -> list[BankRecord]:
    return [answer(item, "trunk", givens[0])] + [answer(item, f"s{i}", g) for i, g in enumerate(givens[1:])]


def test_the_server_schedule_decides_how_many_are_drawn():
    unanimous = problem("a", [7.0] * 5)
    split = problem("b", [7.0, 3.0, 7.0, 3.0, 7.0])
    decided = BestOfNConfig(n=5, select="vote", stop="decided", prune_at=0, greedy_first=True)
    assert drawn(unanimous, decided) == 3  # 3 of 5 agree after the first batch: the other 2 cannot change it
    assert drawn(split, decided) == 5
    agree2 = BestOfNConfig(n=5, select="vote", stop="agree", window=2, prune_at=0, greedy_first=True)
    assert drawn(unanimous, agree2) == 2 and drawn(split, agree2) == 5
    assert drawn(problem("c", [3.0, 7.0, 7.0, 1.0, 1.0]), agree2) == 3  # 7 7 after the third


def test_the_replay_counts_accuracy_samples_and_tokens_against_the_full_draw():
    records = problem("a", [7.0] * 5) + problem("b", [3.0, 7.0, 7.0, 1.0, 1.0])
    r = replay(records, "train", 5)
    assert r["problems"] == 2 and r["greedy"] == 0.5
    assert r["rules"]["all"]["samples"] == 5 and r["rules"]["all"]["accuracy"] == 1.0  # b: 7 7 beat 1 1 (7 first)
    agree = r["rules"]["agree-2"]
    assert agree["samples"] == (2 + 3) / 2 and agree["tokens_vs_full"] == 50 / 100
    assert agree["accuracy"] == 1.0 and agree["fixed"] == 1 and agree["broke"] == 0
    assert replay(records, "train", 9) == {"split": "train", "n": 9, "problems": 0}  # too few samples for N = 9
