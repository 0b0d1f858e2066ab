"""Reading the bank for training and analyses: every record of some domains' collections, and the chat prompts
their problems were asked with."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.problems import collections, items_by_id
from sla_pipeline.bank.record import BankRecord


def read_bank(bank: Path, rollouts: bool = True, domains: Iterable[str] = ("gsm",)) -> list[BankRecord]:
    """Every record of the domains' collections (without `rollouts`, all but the rollouts)."""
    return [r for domain in domains for name in collections(domain)[: 3 if rollouts else 2]
            for r in Collection(bank / name).records()]


def first_problems(records: list[BankRecord], count: int) -> list[BankRecord]:
    """The records of each domain's first `count` problems, in the order the problems first appear."""
    items: dict[str, dict[str, None]] = {}  # a dict per domain: its problems in first-seen order, found in O(1)
    for r in records:
        items.setdefault(r.domain, {})[r.item] = None
    kept = {item for domain_items in items.values() for item in list(domain_items)[:count]}
    return [r for r in records if r.item in kept]


def prompt_ids(tokenizer, records: list[BankRecord]) -> dict[str, list[int]]:
    items = items_by_id({r.item for r in records})
    return {i: list(tokenizer.apply_chat_template(list(it.messages), add_generation_prompt=True, tokenize=True,
                                                  return_dict=False)) for i, it in items.items()}
