"""How often a head makes a search's choice right, on the bank's answer pairs (bank/pairs.py): siblings as
SLA sees them (`lookahead` tokens past the fork) and best-of-N's candidates (whole answers).

A head scores the part of an answer a search sees by its read-out: the mean reward over those tokens, or the
reward at the last of them (a value head). A pair is right when the right answer scores higher (a tie counts
one half); intervals are bootstrapped over problems, whose pairs are not independent.
"""

from __future__ import annotations

from typing import Callable, Sequence

from sla_pipeline.bank.pairs import AnswerPair
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.eval.stats import bootstrap_ci
from sla_pipeline.training.value_data import scored_length

# score(answer, tokens seen) → the head's score of that answer's first `seen` tokens
Scorer = Callable[[BankRecord, int], float]


def seen_tokens(pair: AnswerPair, answer: BankRecord, lookahead: int | None, limit: int) -> int:
    """The tokens of `answer` a search sees: `lookahead` past where the pair parts (all, without one), never
    past its last scored token (a final EOS has no reward)."""
    last = scored_length(answer, limit)
    return last if lookahead is None else max(1, min(last, pair.parting + lookahead))


def reach(pairs: Sequence[tuple[Sequence[AnswerPair], int | None]], limit: int) -> dict[str, tuple[BankRecord, int]]:
    """Per answer id, the answer and how far any of the choices (pairs, each group with its look-ahead) reads it."""
    far: dict[str, tuple[BankRecord, int]] = {}
    for group, lookahead in pairs:
        for p in group:
            for a in (p.right, p.wrong):
                seen = seen_tokens(p, a, lookahead, limit)
                far[a.id] = (a, max(seen, far.get(a.id, (a, 0))[1]))
    return far


def outcomes(pairs: Sequence[AnswerPair], score: Scorer, lookahead: int | None, limit: int) -> list[float]:
    result = []
    for p in pairs:
        right = score(p.right, seen_tokens(p, p.right, lookahead, limit))
        wrong = score(p.wrong, seen_tokens(p, p.wrong, lookahead, limit))
        result.append(1.0 if right > wrong else 0.5 if right == wrong else 0.0)
    return result


def choice_accuracy(pairs: Sequence[AnswerPair], score: Scorer, lookahead: int | None, limit: int) -> dict:
    """{"pairs", "problems", "accuracy", "ci95"} (accuracy and interval None without pairs)."""
    if not pairs:
        return {"pairs": 0, "problems": 0, "accuracy": None, "ci95": None}
    got = outcomes(pairs, score, lookahead, limit)
    items = [p.item for p in pairs]
    return {"pairs": len(pairs), "problems": len(set(items)), "accuracy": sum(got) / len(got),
            "ci95": bootstrap_ci(got, groups=items)}


def read(rewards: Sequence[float], seen: int, readout: str) -> float:
    """A path's score from its per-position rewards: the mean of the first `seen`, or the `seen`-th."""
    if readout == "last":
        return rewards[seen - 1]
    return sum(rewards[:seen]) / seen
