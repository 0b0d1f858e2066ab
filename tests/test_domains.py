"""MBPP and IFEval from their pinned packages: the sets, their recorded splits, and the checkers that grade
answers (MBPP's in the sandbox, IFEval's with the NLTK data extracted from llama-index-core's wheel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sla_pipeline.data.sources import Item, user
from sla_pipeline.domains import domain_of, grade
from sla_pipeline.domains.if_train import if_train_items
from sla_pipeline.domains.ifeval import follows, ifeval_items
from sla_pipeline.domains.mbpp import _docs, entry_point, extract_code, mbpp_items, run_tests

pytestmark = pytest.mark.download
SPLITS = Path(__file__).parents[1] / "sla_pipeline" / "domains" / "splits"


@pytest.mark.parametrize("name, load, sides", [("mbpp", mbpp_items, ("train", "validation", "test")),
                                                ("ifeval", ifeval_items, ("validation", "test"))])
def test_each_split_is_disjoint_complete_and_the_recorded_one(name, load, sides):
    items = load()
    recorded = json.loads((SPLITS / f"{name}.json").read_text())
    by_side = {side: [int(it.id.split("/")[1]) for it in items if it.split == side] for side in sides}
    assert by_side == {side: recorded[side] for side in sides}  # stable: what the repository records
    ids = [i for side in sides for i in by_side[side]]
    assert len(ids) == len(set(ids)) == len(items) == {"mbpp": 500, "ifeval": 541}[name]
    assert [it.id for it in load(sides[-1])] == [it.id for it in items if it.split == sides[-1]]


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


def check(instruction: str, kwargs: dict, response: str, prompt: str = "Write about cats.") -> bool:
    return follows(prompt, (instruction,), (kwargs,), response)[0]


ROUND_TRIP = [  # (instruction, kwargs, a response that follows it, one that breaks it)
    ("punctuation:no_comma", {}, "Cats sleep a lot.", "Cats, famously, sleep."),
    ("change_case:english_lowercase", {}, "cats are small animals that like to sleep in the sun all day.",
     "Cats are small animals that like to sleep in the sun all day."),  # langdetect needs a sentence or two
    ("change_case:english_capital", {}, "CATS ARE SMALL ANIMALS THAT LIKE TO SLEEP IN THE SUN ALL DAY.",
     "CATS are small animals that like to sleep in the sun all day."),
    ("length_constraints:number_words", {"relation": "at least", "num_words": 5},
     "Cats are small quiet animals indeed.", "Cats are small."),
    ("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3},
     "Cats purr. Dogs bark.", "Cats purr. Dogs bark. Birds sing. Fish swim."),
    ("keywords:existence", {"keywords": ["whisker"]}, "A cat has a whisker.", "A cat has fur."),
    ("keywords:forbidden_words", {"forbidden_words": ["dog"]}, "Cats are great.", "Cats chase the dog."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Cats nap. Any other questions?",
     "Any other questions? Cats nap."),
    ("detectable_format:title", {}, "<<On Cats>>\nCats nap.", "On Cats\nCats nap."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* naps\n* purrs", "* naps\n* purrs\n* eats"),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Cats nap.\nP.S. They purr.", "Cats nap."),
    ("startend:quotation", {}, '"Cats nap all day."', "Cats nap all day."),
    ("detectable_format:json_format", {}, '{"cats": "nap"}', "cats: nap"),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "Cats nap.\n***\nCats purr.", "Cats nap."),
]


@pytest.mark.parametrize("instruction, kwargs, good, bad", ROUND_TRIP, ids=[r[0] for r in ROUND_TRIP])
def test_ifeval_checkers_tell_a_followed_instruction_from_a_broken_one(instruction, kwargs, good, bad):
    assert check(instruction, kwargs, good) is True
    assert check(instruction, kwargs, bad) is False


def test_an_ifeval_answer_is_right_only_when_it_follows_every_instruction():
    item = Item("ifeval/x", "ifeval", "validation", (user("Write about cats."),),
                meta={"instructions": ("punctuation:no_comma", "change_case:english_lowercase"), "kwargs": ({}, {})})
    assert grade(item, "cats are small animals that like to sleep in the sun all day.").correct
    broke_one = grade(item, "Cats are small animals that like to sleep in the sun all day.")
    assert not broke_one.correct and broke_one.checks == (True, False)
    assert grade(item, "   ").checks == (False, False)  # an empty answer follows nothing


def test_sentence_counting_has_its_nltk_data():
    """count_sentences needs punkt_tab (LookupError without the extracted data)."""
    assert check("length_constraints:number_sentences", {"relation": "at least", "num_sentences": 2},
                 "Mr. Smith owns a cat. It naps.")


def test_if_training_prompts_are_stable_never_ifeval_and_graded_by_its_checkers():
    items = if_train_items(40)
    assert items == if_train_items(40) and [it.id for it in if_train_items(5)] == [it.id for it in items[:5]]
    evaluation = {it.messages[0]["content"] for it in ifeval_items()}
    assert not evaluation & {it.messages[0]["content"] for it in if_train_items()}
    assert all(1 <= len(it.meta["instructions"]) == len(it.meta["kwargs"]) <= 3 for it in items)
    assert {domain_of(it) for it in items} == {"ifeval"} and {it.split for it in items} == {"train"}
    repeat = next(it for it in if_train_items() if "combination:repeat_prompt" in it.meta["instructions"])
    request = repeat.meta["kwargs"][repeat.meta["instructions"].index("combination:repeat_prompt")]["prompt_to_repeat"]
    assert grade(repeat, request + "\nSure.").checks[-1] is True
    assert grade(repeat, "Sure. " + request).checks[-1] is False
