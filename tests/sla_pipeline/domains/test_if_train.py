"""The instruction-following training prompts: stable, never IFEval's, checked by its checkers."""

from __future__ import annotations

import pytest

from sla_pipeline.domains import domain_of, grade
from sla_pipeline.domains.if_train import if_train_items
from sla_pipeline.domains.ifeval import ifeval_items

pytestmark = pytest.mark.download


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
