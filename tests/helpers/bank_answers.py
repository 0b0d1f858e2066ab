"""Crafted bank answers for the value-head and choice tests: `answer` builds a record, `marker_task` a
synthetic task whose outcome a marker token fixes early in the answer, `with_samples` adds best-of-N's
candidates to it."""

from __future__ import annotations

import random

from sla_pipeline.bank.record import BankRecord


def answer(item: str, name: str, ids: list[int], right: bool, kind: str = "sample", split: str = "train",
           finish: str = "length", **fork) -> BankRecord:
    return BankRecord(f"{item}#{name}", kind, split, item, None if kind != "sample" else 1, "x", tuple(ids), finish,
                      1.0, 1.0 if right else 0.0, right, **fork)


MARKERS = (1500, 2500)  # the right marker, the wrong one


def marker_task(rng: random.Random, problems: int, split: str, tail: int = 6,
                items: list[str] | None = None) -> tuple[list[BankRecord], dict[str, list[int]]]:
    """Per problem a trunk and one fork that part at a marker token (position 4) and go on with `tail` random
    tokens each: the answer is right exactly when its marker is the right one. `items`: the problems' ids
    (default `SPLIT/i`)."""
    records, prompts = [], {}
    for i in range(problems):
        item = items[i] if items else f"{split}/{i}"
        prompts[item] = [rng.randrange(3000, 9000) for _ in range(6)]
        head = [rng.randrange(3000, 9000) for _ in range(4)]
        good = rng.random() < 0.5  # which side the trunk takes
        sides = [(MARKERS[0], True), (MARKERS[1], False)]
        (m1, r1), (m2, r2) = sides if good else sides[::-1]
        trunk = head + [m1] + [rng.randrange(3000, 9000) for _ in range(tail)]
        fork = head + [m2] + [rng.randrange(3000, 9000) for _ in range(tail)]
        records.append(answer(item, "trunk", trunk, r1, kind="trunk", split=split))
        records.append(answer(item, "fork@4", fork, r2, kind="fork", split=split, parent=f"{item}#trunk",
                              fork_at=4, fork_token=m2))
    return records, prompts


def with_samples(rng: random.Random, records: list[BankRecord]) -> list[BankRecord]:
    """`records` and per problem two independent samples, one with each marker: best-of-N's candidates."""
    samples = []
    for item in sorted({r.item for r in records}):
        split = next(r.split for r in records if r.item == item)
        for name, (marker, right) in zip(("s0", "s1"), ((MARKERS[0], True), (MARKERS[1], False))):
            ids = ([rng.randrange(3000, 9000) for _ in range(4)] + [marker]
                   + [rng.randrange(3000, 9000) for _ in range(6)])
            samples.append(answer(item, name, ids, right, split=split))
    return records + samples
