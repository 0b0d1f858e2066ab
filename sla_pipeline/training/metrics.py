"""How good a token-level reward is (docs/background.md#reward-transformer): pair accuracy on response prefixes, and
AuTRC.

`prefix_accuracy(f)`: the share of pairs whose chosen response has the higher mean reward when only the
first ceil(f · length) tokens of each response are seen (ties count one half).
AuTRC: the trapezoid area under accuracy against f over [0, 1], through the points f = 0.25, 0.5, 0.75, 1
and (0, 0.5): with no response token seen, both sides score the same prompt, which is chance. A perfect
token-level reward scores 1 − 0.25·0.5/2 = 0.9375 (it cannot beat chance at f = 0); chance scores 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def prefix_mean(rewards: Sequence[float], fraction: float) -> float:
    n = max(1, math.ceil(fraction * len(rewards)))
    return sum(rewards[:n]) / n


def prefix_outcomes(chosen: Sequence[Sequence[float]], rejected: Sequence[Sequence[float]],
                    fraction: float) -> list[float]:
    """Per pair: 1 if the chosen prefix's mean reward is higher, 0.5 on a tie, else 0."""
    if len(chosen) != len(rejected) or not chosen:
        raise ValueError("need the same, non-zero number of chosen and rejected reward lists")
    outcomes = []
    for c, r in zip(chosen, rejected):
        mc, mr = prefix_mean(c, fraction), prefix_mean(r, fraction)
        outcomes.append(1.0 if mc > mr else 0.5 if mc == mr else 0.0)
    return outcomes


def parting(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two responses share (siblings: where SLA forked them)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def prefix_accuracy(chosen: Sequence[Sequence[float]], rejected: Sequence[Sequence[float]], fraction: float) -> float:
    outcomes = prefix_outcomes(chosen, rejected, fraction)
    return sum(outcomes) / len(outcomes)


def trc_curve(chosen, rejected, fractions: Sequence[float] = FRACTIONS) -> dict[float, float]:
    return {f: prefix_accuracy(chosen, rejected, f) for f in fractions}


def autrc(curve: dict[float, float]) -> float:
    points = [(0.0, 0.5)] + sorted(curve.items())
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:]))
