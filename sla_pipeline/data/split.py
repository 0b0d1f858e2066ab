"""The fixed train / held-out split that training and evaluation share.

Every item is assigned by a salted SHA-256 of its identity, so the split never depends on run order, sizes or
seeds, and held-out items can be listed without generating anything:

    gsm       by template (all variants of a template are on one side): 1 template in 5 is held out
    alpaca    by instruction text: 1 in 5 held out (~160 of 805)
    mtbench   by question: only questions with a reference answer can train, and half of those are held
              out; the 50 without references are all held out (evaluation asks first turns of held-out ones)
    dpo_demo  by conversation text: 1 in 10 held out (held-out pairs only score the head, never train it)

Sets with a validation side of their own (MBPP, IFEval) are split three ways by `split_three`, with the same
hash: each side gets its share of the buckets.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "heldout"]
SALT = "sla-split-v1"
HELDOUT_ONE_IN = {"gsm": 5, "alpaca": 5, "mtbench": 2, "dpo_demo": 10}
SIDES = ("train", "validation", "test")


def bucket(source: str, identity: str, buckets: int) -> int:
    digest = hashlib.sha256(f"{SALT}:{source}:{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def split_of(source: str, identity: str, trainable: bool = True) -> Split:
    """Which side an item is on. `identity`: the template id (gsm), instruction / conversation text, or
    question id (mtbench). `trainable=False` (an MT-Bench question without a reference) is always held out."""
    if source not in HELDOUT_ONE_IN:
        raise ValueError(f"unknown data source {source!r}; known: {', '.join(HELDOUT_ONE_IN)}")
    if not trainable:
        return "heldout"
    return "heldout" if bucket(source, identity, HELDOUT_ONE_IN[source]) == 0 else "train"


def split_three(source: str, identity: str, shares: dict[str, int]) -> str:
    """"train", "validation" or "test": `shares` gives each side's number of hash buckets (e.g. {"train": 5,
    "validation": 2, "test": 3}: half, a fifth and three tenths); a side left out gets none."""
    if set(shares) - set(SIDES) or min(shares.values(), default=0) < 0 or not sum(shares.values()):
        raise ValueError(f"shares must give buckets to some of {', '.join(SIDES)}, got {shares}")
    b = bucket(source, identity, sum(shares.values()))
    for side in SIDES:
        if b < shares.get(side, 0):
            return side
        b -= shares.get(side, 0)
    raise AssertionError("unreachable: the buckets are the shares' sum")
