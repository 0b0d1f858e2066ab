"""The prefixes' Monte-Carlo values (sla_pipeline/analyses/prefix_value.py): which prefix a sibling pair is cut
to, how draws rank a pair (ties, answers finished inside the look-ahead, the first k draws), the resumable
draws file, and on a tiny model that continuations start after the prefix and are graded whole."""

from __future__ import annotations

import json

import pytest

from sla_engine.engine import EngineConfig
from sla_pipeline.analyses.prefix_value import (continue_prefix, draw_key, drawn, prefix, read_draws, summary,
                                                validation_siblings)
from sla_pipeline.bank.record import BankRecord
from tests.engine_thread import EngineThread
from tests.tiny_models import make_tiny_model


def answer(item: str, name: str, ids: tuple[int, ...], correct: bool, split: str = "heldout",
           finish: str = "length") -> BankRecord:
    fork = dict(parent=f"{item}#trunk", fork_at=3, fork_token=ids[3]) if name != "trunk" else {}
    return BankRecord(f"{item}#{name}", "trunk" if name == "trunk" else "fork", split, item, None, "x", ids, finish,
                      7.0, 7.0 if correct else 1.0, correct, **fork)


def siblings():
    trunk = tuple(range(100))
    fork = (0, 1, 2, 99) + tuple(range(200, 296))  # parts from the trunk at token 3
    return [answer("a", "trunk", trunk, False), answer("a", "f3", fork, True),
            answer("b", "trunk", trunk, True), answer("b", "f3", fork[:10], False, finish="stop"),
            answer("c", "trunk", trunk, True, split="train"), answer("c", "f3", fork, False, split="train")]


def entry(*outcomes: bool, finished: bool | None = None) -> dict:
    return {"finished": finished, "draws": [{"index": i, "correct": c} for i, c in enumerate(outcomes)]}


def test_pairs_are_the_validation_siblings_cut_past_where_they_part():
    pairs = validation_siblings(siblings(), None)
    assert [(p.item, p.parting) for p in pairs] == [("a", 3), ("b", 3)]  # the train pair is not read
    a, b = pairs
    assert prefix(a, "right", 30) == a.right.token_ids[:33] and prefix(a, "wrong", 30) == tuple(range(33))
    assert prefix(b, "wrong", 30) == b.wrong.token_ids  # it ends inside the look-ahead: read whole
    assert draw_key(a, "right", 30) != draw_key(a, "right", 60)  # another look-ahead is drawn apart


def test_pairs_are_ranked_by_the_share_of_right_continuations():
    a, b = validation_siblings(siblings(), None)
    draws = {draw_key(a, "right", 30): entry(True, False, True, True),  # 3/4 against 1/4: ranked right
             draw_key(a, "wrong", 30): entry(False, True, False, False),
             draw_key(b, "right", 30): entry(False, True, True, True),  # 3/4 against a finished wrong answer
             draw_key(b, "wrong", 30): entry(finished=False)}
    got = summary([a, b], draws, rollouts=4, lookahead=30)
    assert got["pairs"] == 2 and got["lookahead_accuracy"] == 1.0 and got["finished_in_window"] == 1
    first = {d["draws"]: d for d in got["by_draws"]}
    # with one draw each: a's sides are right / wrong (ranked right); b's right side drew a wrong answer: a tie
    assert sorted(first) == [1, 2, 4] and first[1]["accuracy"] == 0.75 and first[1]["ties"] == 1
    assert got["mean_value"] == {"right": 0.75, "wrong": 0.125}
    draws[draw_key(b, "right", 30)] = entry(True)  # too few draws: the pair waits
    assert summary([a, b], draws, rollouts=4, lookahead=30)["pairs"] == 1
    assert drawn(None) == 0 and drawn(entry(finished=True)) > 4


def test_a_rerun_with_more_rollouts_appends_to_the_same_prefix(tmp_path):
    path = tmp_path / "draws.jsonl"
    lines = [{"key": "k", "finished": None, "draws": [{"index": 0, "correct": True}]},
             {"key": "k", "finished": None, "draws": [{"index": 1, "correct": False}]}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert [d["index"] for d in read_draws(path)["k"]["draws"]] == [0, 1]


@pytest.mark.engine
def test_continuations_follow_the_prefix_and_are_graded_whole(tmp_path):
    folder = make_tiny_model("qwen2", tmp_path / "tiny", seed=3)
    runner = EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", max_model_len=1024,
                                       kv_cache_gib=0.25, warmup=False))
    try:
        engine = runner.engine
        ids = tuple(engine.tokenizer.encode("The answer is 4", add_special_tokens=False))
        messages = [{"role": "user", "content": "2+2?"}]
        draws = runner.run(continue_prefix(engine, messages, ids, 4.0, n=3, seed=5, start=2, max_tokens=40))
        again = runner.run(continue_prefix(engine, messages, ids, 4.0, n=3, seed=5, start=2, max_tokens=40))
    finally:
        runner.close()
    assert [d["index"] for d in draws] == [2, 3, 4] and draws == again  # seeded: a rerun draws the same
    for d in draws:
        assert d["text"].startswith("The answer is 4") and d["prefix_tokens"] == len(ids)
        assert 1 <= len(d["token_ids"]) <= 40 - len(ids) and isinstance(d["correct"], bool)
