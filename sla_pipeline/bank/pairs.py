"""The two choices a search makes, as pairs of bank answers whose outcomes differ.

- `siblings`: a trunk and one of its forks, one right and one wrong — SLA's choice at a chunk boundary.
  SLA(n, k, d) compares leaves (d + 1) · k tokens past the fork (the fork token counts): `lookahead`.
- `candidates`: best-of-N's choice among independent answers to one problem — every (right, wrong) pair
  among the problem's greedy answer (its trunk) and sampled answers; with `kind="fork"`, among the trunk and
  its forks read whole (a choice between greedy rollouts from the trunk's uncertain points).

Right and wrong are the evaluation's rule (record.py), so an answer cut at max_tokens counts as wrong: for the
user it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sla_pipeline.bank.record import BankRecord, Kind


@dataclass(frozen=True)
class AnswerPair:
    item: str
    right: BankRecord
    wrong: BankRecord
    parting: int  # leading tokens the two share (the fork position for siblings, usually 0 for candidates)

    def seen(self, lookahead: int | None) -> tuple[int, int]:
        """How many tokens of (right, wrong) a search sees: `lookahead` past where they part (at most all)."""
        if lookahead is None:
            return self.right.tokens, self.wrong.tokens
        return min(self.right.tokens, self.parting + lookahead), min(self.wrong.tokens, self.parting + lookahead)


def shared_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def ordered(item: str, a: BankRecord, b: BankRecord) -> AnswerPair:
    right, wrong = (a, b) if a.correct else (b, a)
    return AnswerPair(item, right, wrong, shared_prefix(a.token_ids, b.token_ids))


def sibling_pairs(records: Iterable[BankRecord]) -> list[AnswerPair]:
    """(trunk, fork) pairs whose outcomes differ, in bank order."""
    records = list(records)
    trunks = {r.id: r for r in records if r.kind == "trunk"}
    return [ordered(f.item, trunks[f.parent], f) for f in records
            if f.kind == "fork" and f.parent in trunks and f.correct != trunks[f.parent].correct]


def candidate_pairs(records: Iterable[BankRecord], kind: Kind = "sample") -> list[AnswerPair]:
    """Every (right, wrong) pair among each problem's trunk and answers of `kind` (samples or forks), grouped
    by problem in bank order."""
    by_item: dict[str, list[BankRecord]] = defaultdict(list)
    for r in records:
        if r.kind in ("trunk", kind):
            by_item[r.item].append(r)
    pairs = []
    for item, answers in by_item.items():
        if not any(r.kind == kind for r in answers):
            continue  # a trunk alone is no choice
        right = [r for r in answers if r.correct]
        wrong = [r for r in answers if not r.correct]
        pairs += [ordered(item, r, w) for r in right for w in wrong]
    return pairs
