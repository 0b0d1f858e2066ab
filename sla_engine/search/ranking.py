"""How candidates are scored, ranked and voted: the one rule that every strategy and the pipeline's offline
replays (sla_pipeline/training/choices.py) apply, so that a replay is what the server would do.

- **Score**: a path's score from its per-position rewards under a read-out — the mean of them (a
  Bradley–Terry head, the paper's) or the last one (a value head: the log-odds that the answer ends right);
  −inf without any. A head declares its read-out; a request may ask for another (`search.score`).
- **Standing**: (ended at EOS, score), larger is better; the first part counts only with `prefer_finished`,
  which puts every answer that ended on its own before any cut at max_tokens.
- **Rank**: best standing first, the first drawn among equals.
- **Vote**: of candidates in rank order, the first whose final answer most of them give (self-consistency,
  the ranking breaking ties); the first if none gives one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, TypeVar

from sla_engine.reward.weights import Readout

T = TypeVar("T")
Standing = tuple[bool, float]


def path_score(rewards: Sequence[float], readout: Readout = "mean", seen: int | None = None) -> float:
    """The score of a path's first `seen` positions (all of them by default)."""
    read = rewards if seen is None else rewards[:seen]
    if not read:
        return float("-inf")
    return read[-1] if readout == "last" else sum(read) / len(read)


def standing(score: float, finish_reason: str | None, prefer_finished: bool = False) -> Standing:
    return (prefer_finished and finish_reason == "stop", score)


class Scored(Protocol):  # ScoredTokens (scored.py), or a bank answer's rewards as a replay reads them
    rewards: list[float]
    finish_reason: str | None


def by_score(readout: Readout = "mean", prefer_finished: bool = False) -> Callable[[Scored], Standing]:
    """A scored path's standing under a read-out."""
    return lambda c: standing(path_score(c.rewards, readout), c.finish_reason, prefer_finished)


def ranked(candidates: Sequence[T], standing_of: Callable[[T], Standing]) -> list[T]:
    """Best standing first; among equals, the earlier in `candidates` (the first drawn)."""
    standings = [standing_of(c) for c in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (not standings[i][0], -standings[i][1], i))
    return [candidates[i] for i in order]


def majority(order: Sequence[T], answers: Sequence[Hashable | None]) -> T:
    """Of `order` (best first), the first whose answer (`answers`, one each; None: it gives none) most of them
    give; `order[0]` if none gives one."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return order[0]
    top = max(counts.values())
    return next(o for o, a in zip(order, answers) if a is not None and counts[a] == top)
