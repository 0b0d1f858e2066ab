"""Win / tie / loss, equity and accuracy, with bootstrap 95 % intervals over items.

Equity (the paper's headline, docs/background.md#the-papers-evaluation) = win + tie / 2: the share of items on which a
strategy's answer
is at least as good as greedy's, ties counted half. On a math set a strategy is also compared with the
baseline item by item (`PairedGain`): two accuracies of 30 % ± 12 on the same 64 problems say little apart,
the problems one strategy fixed and broke against the other say more.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sla_pipeline.data.judge import Verdict

BOOTSTRAP_ROUNDS = 2000

# a verdict on (strategy's answer, greedy's answer) → the strategy's score on that item
SCORE = {"first": 1.0, "tie": 0.5, "second": 0.0}


def bootstrap_ci(scores: Sequence[float], level: float = 0.95, rounds: int = BOOTSTRAP_ROUNDS,
                 seed: int = 0, groups: Sequence[str] | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-item scores (items resampled with replacement).

    With `groups` (one label per score), whole groups are resampled instead: scores that are not independent
    of each other — the pairs built from one problem's answers — then widen the interval as they should."""
    if not scores:
        raise ValueError("no scores to bootstrap")
    if groups is None:  # every score its own group
        totals = [(score, 1) for score in scores]
    else:
        if len(groups) != len(scores):
            raise ValueError(f"{len(scores)} scores but {len(groups)} group labels")
        members: dict[str, list[float]] = defaultdict(list)
        for score, group in zip(scores, groups):
            members[group].append(score)
        totals = [(sum(m), len(m)) for m in members.values()]
    rng = random.Random(seed)
    means = []
    for _ in range(rounds):
        drawn = rng.choices(totals, k=len(totals))
        means.append(sum(t for t, _ in drawn) / sum(n for _, n in drawn))
    means.sort()
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
    def of(cls, verdicts: Sequence[Verdict]) -> Equity:
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
    def of(cls, correct: Sequence[bool], groups: Sequence[str] | None = None) -> Accuracy:
        """`groups`: one label per result, when results of one item are not independent (an IFEval prompt's
        instructions): whole items are resampled for the interval."""
        scores = [float(c) for c in correct]
        return cls(int(sum(scores)), len(scores), sum(scores) / len(scores), bootstrap_ci(scores, groups=groups))


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test (McNemar's exact test on the discordant pairs): the chance of a split at
    least this uneven if either side were equally likely to win each one."""
    n = wins + losses
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedGain:
    """A strategy's accuracy minus the baseline's on the same items, with a paired bootstrap interval."""
    fixed: int  # right where the baseline was wrong
    broke: int  # wrong where the baseline was right
    gain: float
    ci95: tuple[float, float]
    p_value: float  # sign test on fixed vs broke

    @classmethod
    def of(cls, correct: Sequence[bool], baseline_correct: Sequence[bool]) -> PairedGain:
        if len(correct) != len(baseline_correct):
            raise ValueError(f"paired results of different lengths: {len(correct)} and {len(baseline_correct)}")
        diffs = [float(a) - float(b) for a, b in zip(correct, baseline_correct)]
        fixed, broke = diffs.count(1.0), diffs.count(-1.0)
        return cls(fixed, broke, sum(diffs) / len(diffs), bootstrap_ci(diffs), sign_test_p(fixed, broke))
