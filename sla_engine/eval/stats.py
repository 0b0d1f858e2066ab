"""Win / tie / loss, equity and accuracy, with bootstrap 95 % intervals over items.

Equity (the paper's headline, REFERENCE §4) = win + tie / 2: the share of items on which a strategy's answer
is at least as good as greedy's, ties counted half.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from sla_engine.data.judge import Verdict

BOOTSTRAP_ROUNDS = 2000

# a verdict on (strategy's answer, greedy's answer) → the strategy's score on that item
SCORE = {"first": 1.0, "tie": 0.5, "second": 0.0}


def bootstrap_ci(scores: Sequence[float], level: float = 0.95, rounds: int = BOOTSTRAP_ROUNDS,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-item scores (items resampled with replacement)."""
    if not scores:
        raise ValueError("no scores to bootstrap")
    rng = random.Random(seed)
    n = len(scores)
    means = sorted(sum(rng.choices(scores, k=n)) / n for _ in range(rounds))
    tail = (1.0 - level) / 2
    return means[int(tail * rounds)], means[min(rounds - 1, int((1.0 - tail) * rounds))]


@dataclass(frozen=True)
class Equity:
    win: int
    tie: int
    loss: int
    equity: float
    ci95: tuple[float, float]

    @classmethod
    def of(cls, verdicts: Sequence[Verdict]) -> "Equity":
        counts = Counter(verdicts)
        scores = [SCORE[v] for v in verdicts]
        return cls(counts["first"], counts["tie"], counts["second"], sum(scores) / len(scores), bootstrap_ci(scores))


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int
    accuracy: float
    ci95: tuple[float, float]

    @classmethod
    def of(cls, correct: Sequence[bool]) -> "Accuracy":
        scores = [float(c) for c in correct]
        return cls(int(sum(scores)), len(scores), sum(scores) / len(scores), bootstrap_ci(scores))
