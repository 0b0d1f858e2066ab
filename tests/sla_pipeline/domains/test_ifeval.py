"""IFEval's checkers from the pinned wheel, with the NLTK data extracted from llama-index-core's: each instruction
type followed and broken."""

from __future__ import annotations

import pytest

from sla_pipeline.data.sources import Item, user
from sla_pipeline.domains import grade
from sla_pipeline.domains.ifeval import follows

pytestmark = pytest.mark.download


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
