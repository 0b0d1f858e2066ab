"""Fork rollouts and best-of-N's samples together (sla_pipeline/analyses/combined_choice.py) on crafted bank
answers: each rule's answer, its cost, which problems count, and the rewards cache that spares the model."""

from __future__ import annotations

import json

from sla_pipeline.analyses.combined_choice import RULES, choose, main, problems, replay
from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.problems import FORKS, SAMPLES
from sla_pipeline.bank.record import BankRecord

SCORES: dict[str, float] = {}


def answer(item: str, name: str, given: float | None, score: float, split: str = "heldout") -> BankRecord:
    kind = "trunk" if name == "trunk" else "fork" if name.startswith("f") else "sample"
    fork = dict(parent=f"{item}#trunk", fork_at=4, fork_token=9) if kind == "fork" else {}
    SCORES[f"{item}#{name}"] = score
    return BankRecord(f"{item}#{name}", kind, split, item, 1 if kind == "sample" else None, "x", tuple(range(10)),
                      "stop", 7.0, given, given == 7.0, **fork)


def score(a: BankRecord, seen: int) -> float:
    return SCORES[a.id]


def crafted() -> list[BankRecord]:
    return [
        # a: greedy wrong; its fork right and scored best; two samples agree on another wrong number
        answer("a", "trunk", 3.0, 0.0), answer("a", "f1", 7.0, 2.0), answer("a", "s0", 5.0, 1.0),
        answer("a", "s1", 5.0, 0.5),
        # b: greedy right; its fork wrong and scored best; both samples agree with greedy
        answer("b", "trunk", 7.0, 0.0), answer("b", "f1", 4.0, 3.0), answer("b", "s0", 7.0, 1.0),
        answer("b", "s1", 7.0, 0.5),
        # c: greedy wrong and no fork point; all three numbers differ, the head's best breaks the tie
        answer("c", "trunk", 3.0, 0.0), answer("c", "s0", 7.0, 0.2), answer("c", "s1", 5.0, 0.1),
        # g: greedy wrong and one sample agrees with it; the fork's pick in greedy's place breaks the tie
        answer("g", "trunk", 3.0, 0.0), answer("g", "f1", 7.0, 2.0), answer("g", "s0", 3.0, 1.0),
        answer("g", "s1", 5.0, 0.5),
        answer("d", "trunk", 7.0, 0.0), answer("d", "s0", 7.0, 0.0),  # one sample: not enough
        answer("e", "trunk", 7.0, 0.0, split="train"), answer("e", "s0", 7.0, 0.0, split="train"),
        answer("e", "s1", 7.0, 0.0, split="train"),
    ]


def test_each_rule_answers_as_the_server_would():
    found = problems(crafted(), "heldout", 2)
    assert [t.item for t, _, _ in found] == ["a", "b", "c", "g"] and [len(f) for _, f, _ in found] == [1, 1, 0, 1]
    a, b, c, g = (choose(t, f, s, score, 512) for t, f, s in found)
    picked = {rule: tuple(p[rule][0].given for p in (a, b, c, g)) for rule in RULES}
    assert picked["forks"] == (7.0, 4.0, 3.0, 7.0)  # the head's best of trunk and forks; c has only greedy
    assert picked["vote"] == (5.0, 7.0, 7.0, 3.0)  # the majority; c: a three-way tie, s0 scored best
    assert picked["forks+vote"] == (5.0, 7.0, 7.0, 7.0)
    assert picked["all-vote"] == (5.0, 7.0, 7.0, 3.0)
    assert picked["all-pick"] == (7.0, 4.0, 7.0, 7.0)
    # cost: the trunk, each fork's tokens past its fork point, every sample; a fork's prefix is not paid twice
    assert a["forks"][1] == 10 + 6 and a["vote"][1] == 10 + 20 and a["forks+vote"][1] == 16 + 20


def test_the_replay_counts_fixed_and_broke_against_greedy():
    result = replay(problems(crafted(), "heldout", 2), score)
    assert (result["problems"], result["greedy"], result["oracle"]) == (4, 1 / 4, 1.0)
    assert (result["forks"]["fixed"], result["forks"]["broke"]) == (2, 1)
    assert (result["forks+vote"]["fixed"], result["vote"]["fixed"]) == (2, 1)
    assert (result["all-pick"]["fixed"], result["all-pick"]["broke"]) == (3, 1)
    assert result["forks"]["cost"] == (16 + 16 + 10 + 16) / 40
    assert replay([], score) == {"problems": 0}


def test_the_command_reads_rewards_from_its_cache_without_a_model(tmp_path, capsys):
    records = crafted()
    Collection(tmp_path / SAMPLES).append([r for r in records if r.kind == "sample"])
    Collection(tmp_path / FORKS).append([r for r in records if r.kind != "sample"])
    cache = tmp_path / "rewards.jsonl"
    half = {r.id: [SCORES[r.id]] * 10 for r in records if r.item in ("a", "b")}
    rest = {r.id: [SCORES[r.id]] * 10 for r in records if r.item not in ("a", "b")}  # mean = last = the score
    cache.write_text(json.dumps(half) + "\n" + json.dumps(rest) + "\n" + '{"cut off')  # a slice cut mid-write
    args = ["--bank", str(tmp_path), "--head", str(tmp_path / "no-head"), "--model", "no-such-model",
            "--samples", "2", "--rewards", str(cache), "--json", str(tmp_path / "out.json")]
    assert main(args) == 0  # every answer is in the cache: neither the model nor the head is read
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["problems"] == 4 and written["all-pick"]["fixed"] == 3
    assert "forks+vote" in capsys.readouterr().out
    assert main([*args, "--problems", "1"]) == 0 and json.loads((tmp_path / "out.json").read_text())["problems"] == 1
