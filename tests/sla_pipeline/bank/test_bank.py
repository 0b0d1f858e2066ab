"""The sample bank (sla_pipeline/bank): records, sealed parts, crash safety, the problem split."""

from __future__ import annotations

import gzip
import json

import pytest

from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.data.jsonl import BadLine
from sla_pipeline.data.sources import Item, user


def record(i: int, kind: str = "sample", split: str = "train", text: str = "so #### 42", **fork) -> BankRecord:
    return BankRecord.graded(f"gsm/t1-s0-{i}#{kind}{fork.get('fork_at', '')}", kind, split, f"gsm/t1-s0-{i}",
                             None if kind != "sample" else 1000 + i, text, [5, 6, 7, 8], "stop", 42.0, **fork)


def test_a_record_is_graded_with_the_evaluation_rule_and_round_trips():
    right, wrong = record(1), record(2, text="the answer is 41")
    assert (right.given, right.correct) == (42.0, True) and (wrong.given, wrong.correct) == (41.0, False)
    fork = record(3, kind="fork", parent="gsm/t1-s0-3#trunk", fork_at=2, fork_token=7, log_ratio=-0.5)
    for r in (right, wrong, fork):
        line = json.loads(json.dumps(r.to_json()))
        assert line["tokens"] == 4 and BankRecord.from_json(line) == r


def test_records_of_every_domain_carry_it_and_round_trip():
    mbpp = Item("mbpp/11", "mbpp", "validation", (user("Write f."),),
                meta={"tests": ("assert f(1) == 2", "assert f(2) == 3"), "setup": ""})
    code = BankRecord.answered(mbpp, "mbpp/11#s0", "sample", 5, "```python\ndef f(x):\n    return 2\n```", [1, 2],
                               "stop")
    assert (code.domain, code.split, code.correct, code.checks) == ("mbpp", "heldout", False, (True, False))
    assert code.failure.startswith("test 1: AssertionError") and code.answer is None
    ifeval = Item("iftrain/3", "iftrain", "train", (user("Say hi."),),
                  meta={"instructions": ("punctuation:no_comma",), "kwargs": ({},)})
    follows = BankRecord.answered(ifeval, "iftrain/3#trunk", "trunk", None, "hi there", [1], "stop")
    assert (follows.domain, follows.correct, follows.checks) == ("ifeval", True, (True,))
    gsm = Item("gsm/t1-s1-0", "gsm", "heldout", (user("?"),), answer=4.0)
    assert BankRecord.answered(gsm, "gsm/t1-s1-0#s0", "sample", 1, "#### 4", [1], "stop").to_json()["domain"] == "gsm"
    for r in (code, follows):
        line = json.loads(json.dumps(r.to_json()))
        assert line["domain"] == r.domain and BankRecord.from_json(line) == r
    old = {k: v for k, v in record(1).to_json().items() if k != "domain"}  # a line written before domains
    assert BankRecord.from_json(old) == record(1)
    with pytest.raises(ValueError, match="test problems never enter"):
        BankRecord.answered(Item("mbpp/12", "mbpp", "test", (user("x"),), meta=mbpp.meta), "m#s0", "sample", 1, "x",
                            [1], "stop")
    with pytest.raises(ValueError, match="checks"):
        BankRecord("x", "sample", "train", "mbpp/1", 1, "x", (1,), "stop", None, None, True, domain="mbpp",
                   checks=(True, False))


def test_a_record_refuses_what_it_cannot_be():
    with pytest.raises(ValueError, match="split"):
        record(1, split="test")
    with pytest.raises(ValueError, match="forks"):
        record(1, kind="fork")  # a fork without its parent and position
    with pytest.raises(ValueError, match="fork_at"):
        record(1, kind="fork", parent="p", fork_at=9, fork_token=7)
    line = record(1).to_json() | {"tokens": 3}
    with pytest.raises(ValueError, match="token ids"):
        BankRecord.from_json(line)


def test_sealing_moves_the_open_records_into_a_compressed_part(tmp_path):
    c = Collection(tmp_path / "gsm-samples")
    c.append([record(i) for i in range(3)])
    first = c.seal()
    assert first.name == "part-00000.jsonl.gz" and not c.open_path.exists()
    c.append([record(i) for i in range(3, 5)])
    assert c.seal().name == "part-00001.jsonl.gz"
    assert [r.id for r in c.records()] == [record(i).id for i in range(5)]
    assert c.seal() is None  # nothing open
    again = first.read_bytes()
    c.append([record(0)])  # an id already sealed is not sealed twice
    c.seal()
    assert len(c.parts()) == 2 and first.read_bytes() == again


def test_a_crash_mid_write_loses_only_the_line_being_written(tmp_path):
    c = Collection(tmp_path / "forks")
    c.append([record(i) for i in range(2)])
    with open(c.open_path, "a") as fh:  # killed halfway through the third line
        fh.write(json.dumps(record(2).to_json())[:40])
    c.append([record(3)])  # the resumed run goes on appending
    bad: list[BadLine] = []
    assert [r.id for r in c.records(bad)] == [record(i).id for i in (0, 1, 3)]
    assert len(bad) == 1 and bad[0].path == c.open_path and bad[0].line == 3


def test_a_crash_between_sealing_and_removing_the_open_file_duplicates_nothing(tmp_path):
    c = Collection(tmp_path / "s")
    c.append([record(i) for i in range(3)])
    kept = c.open_path.read_bytes()
    c.seal()
    c.open_path.write_bytes(kept)  # as if the process died after the rename, before the unlink
    assert [r.id for r in c.records()] == [record(i).id for i in range(3)]
    assert c.seal() is None and len(c.parts()) == 1 and not c.open_path.exists()


def test_a_corrupt_line_in_a_sealed_part_is_reported_with_its_file_and_line(tmp_path):
    c = Collection(tmp_path / "s")
    c.append([record(i) for i in range(2)])
    part = c.seal()
    lines = gzip.decompress(part.read_bytes()).decode().splitlines()
    lines.insert(1, '{"id": "broken"')
    part.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    bad: list[BadLine] = []
    assert [r.id for r in c.records(bad)] == [record(0).id, record(1).id]
    assert [(b.path, b.line) for b in bad] == [(part, 2)]
    part.write_bytes(part.read_bytes()[:-30])  # a damaged end of the stream
    bad.clear()
    list(c.records(bad))
    assert bad and bad[-1].path == part and "gzip" in bad[-1].error


def test_stats_count_the_pairs_whose_outcomes_differ(tmp_path, capsys):
    from sla.cli import main
    from sla_pipeline.bank.problems import FORKS, SAMPLES

    def sample(i: int, n: int, text: str, split: str = "train") -> BankRecord:
        return BankRecord.graded(f"gsm/t1-s0-{i}#s{n}", "sample", split, f"gsm/t1-s0-{i}", 7, text, [5], "stop", 42.0)

    trunk = record(1, kind="trunk")  # right
    fork = {"parent": trunk.id, "fork_token": 7, "log_ratio": -0.5}
    Collection(tmp_path / FORKS).append([
        trunk, record(1, kind="fork", text="#### 41", fork_at=2, **fork), record(1, kind="fork", fork_at=3, **fork),
        record(2, kind="trunk", split="heldout", text="#### 7")])
    Collection(tmp_path / SAMPLES).append([sample(1, 0, "#### 41"), sample(1, 1, "#### 42"),
                                           sample(2, 0, "#### 8", split="heldout")])
    assert main(["bank", "stats", "--bank", str(tmp_path)]) == 0
    by_domain = json.loads(capsys.readouterr().out)
    assert by_domain["mbpp"] == {"collections": {}, "pairs": {}}
    held = by_domain["gsm"]
    assert held["collections"][FORKS]["fork"]["train"] == {"problems": 1, "records": 2, "correct": 1, "cut": 0,
                                                           "tokens": 8}
    assert held["pairs"]["train"] == {"siblings": {"pairs": 1, "problems": 1},  # the trunk and the wrong fork
                                      "candidates": {"pairs": 2, "problems": 1}}  # trunk and right sample vs wrong
    assert held["pairs"]["heldout"] == {"siblings": {"pairs": 0, "problems": 0},
                                        "candidates": {"pairs": 0, "problems": 0}}


@pytest.mark.download
def test_validation_problems_are_held_out_templates_and_never_test_questions():
    from sla_pipeline.bank.problems import test_items, train_items, validation_items
    from sla_pipeline.data.split import split_of

    validation, test, train = validation_items(60), test_items(), train_items(60)
    assert len(validation) == 60 and len({it.id for it in validation}) == 60
    assert all(it.split == "heldout" and "-s1-" in it.id for it in validation)
    assert all(split_of("gsm", str(it.meta["template"])) == "heldout" for it in validation)
    questions = {it.messages[-1]["content"] for it in test}
    assert not questions & {it.messages[-1]["content"] for it in validation}
    assert all(it.split == "train" for it in train)
    assert not {it.meta["template"] for it in train} & {it.meta["template"] for it in validation}


def test_problems_are_found_by_id_whatever_order_they_were_drawn_in():
    from sla_pipeline.bank.problems import MAX_LIST, items_by_id, train_items, validation_items

    validation, train = validation_items(80), train_items(300)
    # an open slice's gaps, and train forks that went first to problems far down the list
    drawn = {it.id for it in validation[:50] + validation[60:80] + train[:20] + train[250:260] + [train[-1]]}
    found = items_by_id(drawn)
    assert found.keys() == drawn and found[validation[70].id] == validation[70]
    assert found[train[-1].id] == train[-1] and found[train[255].id] == train[255]
    with pytest.raises(ValueError, match=f"not among the first {MAX_LIST} problems"):
        items_by_id({validation[0].id, "gsm/t0-s1-999"})


def test_train_forks_go_first_to_problems_whose_samples_have_both_outcomes_last_to_those_that_agree(tmp_path):
    from sla_pipeline.bank.grow import fork_order
    from sla_pipeline.data.sources import Item

    items = [Item(f"gsm/t{n}-s0-0", "gsm", "train", (), answer=1.0) for n in range(5)]
    samples = Collection(tmp_path / "gsm-samples")
    outcomes = {0: ("2",), 1: ("1", "2"), 2: ("1", "1"), 3: ("2", "1", "2")}  # t4 has none: not sampled yet
    samples.append([BankRecord.graded(f"{items[n].id}#s{k}", "sample", "train", items[n].id, 7, f"#### {given}",
                                      [5], "stop", 1.0)
                    for n, given_all in outcomes.items() for k, given in enumerate(given_all)])
    assert [it.id for it in fork_order(items, samples)] == [items[n].id for n in (1, 3, 4, 0, 2)]


def test_train_forks_take_up_samples_drawn_since_the_last_turn(tmp_path):
    from sla_pipeline.bank.grow import jobs
    from sla_pipeline.bank.plan import GrowPlan
    from sla_pipeline.bank.problems import SAMPLES, train_items

    plan = GrowPlan(tmp_path, "qwen2.5-coder-0.5b-instruct", train_sample_problems=3, train_fork_problems=3,
                    validation_problems=1, jobs=("train-forks",))
    [forks], first = jobs(plan), train_items(3)
    assert [it.id for it in forks.todo()] == [it.id for it in first]
    last = first[2]
    Collection(tmp_path / SAMPLES).append([  # the samples job drew the last problem: one right, one wrong
        BankRecord.graded(f"{last.id}#s{k}", "sample", "train", last.id, 7, f"#### {given}", [5], "stop", last.answer)
        for k, given in enumerate((last.answer, last.answer + 1))])
    assert [it.id for it in forks.todo()] == [first[2].id, first[0].id, first[1].id]


@pytest.mark.download
def test_grow_runs_the_jobs_a_plan_names_in_its_order_and_skips_drawn_problems(tmp_path):
    from sla_pipeline.bank.grow import jobs
    from sla_pipeline.bank.plan import GrowPlan
    from sla_pipeline.bank.problems import SAMPLES, train_items

    first = train_items(1)[0]
    Collection(tmp_path / SAMPLES).append([BankRecord.graded(
        f"{first.id}#s0", "sample", "train", first.id, 7, "so #### 42", [5], "stop", first.answer)])
    plan = GrowPlan(tmp_path, "qwen2.5-coder-0.5b-instruct", train_sample_problems=3, train_fork_problems=2,
                    validation_problems=2, jobs=("train-samples", "validation-forks"))
    listed = jobs(plan)
    assert [j.name for j in listed] == ["train samples", "validation forks"]
    assert [it.id for it in listed[0].todo()] == [it.id for it in train_items(3)[1:]]
    assert len(listed[1].todo()) == 2
    for bad in (("train-samples", "train-samples"), ("samples",), ()):
        with pytest.raises(ValueError, match="jobs"):
            GrowPlan(tmp_path, "m", jobs=bad)
