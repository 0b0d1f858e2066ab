"""MBPP from its pinned package: its recorded split, and answers graded by running their tests in the sandbox."""

from __future__ import annotations

import pytest

from sla_pipeline.domains import grade
from sla_pipeline.domains.mbpp import _docs, entry_point, extract_code, mbpp_items, run_tests

pytestmark = pytest.mark.download


def test_mbpp_prompts_show_the_tests_and_gold_code_passes_them():
    items = {it.id: it for it in mbpp_items()}
    gold = {f"mbpp/{d['task_id']}": d["code"] for d in _docs()}
    for item_id in ("mbpp/11", "mbpp/367", "mbpp/500"):  # 367's test setup uses a class the answer defines
        item = items[item_id]
        assert all(t in item.messages[0]["content"] for t in item.meta["tests"])
        answer = f"Here you go:\n```python\n{gold[item_id]}\n```\nIt passes the tests."
        outcome = grade(item, answer)
        assert outcome.correct and outcome.checks == (True,) * len(item.meta["tests"]), outcome


def test_a_wrong_or_hostile_mbpp_answer_fails_with_its_reason():
    item = next(it for it in mbpp_items() if it.id == "mbpp/11")
    wrong = grade(item, "```python\ndef remove_Occ(s, ch):\n    return s[1:]\n```")
    assert not wrong.correct and wrong.checks[0] is False and wrong.failure.startswith("test 0: AssertionError")
    looping = grade(item, "```python\ndef remove_Occ(s, ch):\n    while True: pass\n```")
    assert not looping.correct and looping.checks == (False, False, False) and looping.failure
    broken = grade(item, "```python\ndef remove_Occ(s, ch) return s\n```")
    assert not broken.correct and "SyntaxError" in broken.failure
    exiting = grade(item, "```python\nimport sys\nsys.exit(0)\n```")
    assert not exiting.correct and "SystemExit" in exiting.failure


def test_the_code_block_that_defines_the_tested_function_is_run():
    text = "Usage:\n```python\nprint(f(2))\n```\nCode:\n```python\ndef f(x):\n    return x + 1\n```"
    assert entry_point(["assert f(2) == 3"]) == "f"
    assert extract_code(text, "f") == "def f(x):\n    return x + 1\n"
    assert run_tests(extract_code(text, "f"), ("assert f(2) == 3", "assert f(0) == 2")).checks == (True, False)
