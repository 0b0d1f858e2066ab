"""Which GSM problems the bank draws answers for, and which it must never touch.

- train: GSM-symbolic variants of the train-side templates (data/split.py), seed 0;
- validation: variants of the held-out templates drawn with `VALIDATION_SEED`, leaving out every question of
  the test set, so that heads, losses, read-outs and settings are chosen here;
- test: `sla eval`'s held-out GSM set (seed `TEST_SEED`, the first `TEST_SIZE`), only ever reported on.
"""

from __future__ import annotations

from sla_pipeline.data.sources import Item, gsm_items

VALIDATION_SEED = 1
TEST_SEED, TEST_SIZE = 0, 200
SAMPLES, FORKS, ROLLOUTS = "gsm-samples", "gsm-forks", "gsm-rollouts"  # the bank's collections
OPEN_SLICE_GAP = 100  # problems an open slice may have skipped (at least `sla bank grow --slice`'s default, 50)
JOBS = ("validation-forks", "validation-samples", "train-samples", "train-forks",  # `sla bank grow`'s, in turn
        "validation-rollouts", "train-rollouts")


def train_items(count: int) -> list[Item]:
    return gsm_items("train", count)


def test_items() -> list[Item]:
    return gsm_items("heldout", TEST_SIZE, TEST_SEED)


def validation_items(count: int) -> list[Item]:
    """`count` held-out-template problems drawn with VALIDATION_SEED, none of them a test-set question."""
    test = {it.messages[-1]["content"] for it in test_items()}
    ask = count
    while True:
        fresh = [it for it in gsm_items("heldout", ask, VALIDATION_SEED) if it.messages[-1]["content"] not in test]
        if len(fresh) >= count:
            return fresh[:count]
        if ask > 4 * count + 100:
            raise ValueError(f"only {len(fresh)} validation problems differ from the test set")
        ask += count - len(fresh) + 10


def items_by_id(ids: set[str]) -> dict[str, Item]:
    """The problems behind bank records' item ids. `sla bank grow` takes each list's problems in order, so
    the ids of each role are the first ones of its list but for the gaps of a slice still being drawn (its
    problems finish out of order): each list is drawn as long as there are ids, then `OPEN_SLICE_GAP` longer
    if some are missing."""
    train = {i for i in ids if f"-s{VALIDATION_SEED}-" not in i}
    validation = ids - train
    for gap in (0, OPEN_SLICE_GAP):
        found = {it.id: it for it in train_items(len(train) + gap if train else 0)
                 + validation_items(len(validation) + gap if validation else 0)}
        if not (missing := ids - found.keys()):
            return {i: found[i] for i in ids}
    raise ValueError(f"{len(missing)} bank items are not among the first problems of their list, e.g. {min(missing)}")
