"""When a vote may stop drawing samples (best-of-N's `stop`), from the final answers drawn so far, in draw
order (None: a sample that gives no answer; it does not vote):

- **decided**: the majority cannot change: the leading answer's count exceeds the runner-up's by more than
  the samples still to draw. The vote's answer is then what drawing them all would give (ties, which the
  ranking breaks, are not reached: the lead is strict), so this stop is free of loss.
- **agree**: the last `window` answers drawn are one and the same (Early-Stopping Self-Consistency, Li et al.,
  ICLR 2024: a window of agreeing answers rarely turns). It can stop where drawing on would have changed the
  majority; what it costs is measured, not assumed (docs/results.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Literal

Stop = Literal["all", "decided", "agree"]
STOPS: tuple[str, ...] = ("all", "decided", "agree")


def decided(answers: Sequence[Hashable | None], remaining: int) -> bool:
    counts = Counter(a for a in answers if a is not None).most_common(2)
    if not counts:
        return False
    runner_up = counts[1][1] if len(counts) > 1 else 0
    return counts[0][1] > runner_up + remaining


def agree(answers: Sequence[Hashable | None], window: int) -> bool:
    last = answers[-window:]
    return len(last) == window and last[0] is not None and all(a == last[0] for a in last)


def should_stop(rule: Stop, answers: Sequence[Hashable | None], remaining: int, window: int) -> bool:
    """Whether to stop drawing, with `remaining` samples not drawn yet (never when none remain: then the vote
    is simply complete)."""
    if remaining <= 0 or rule == "all":
        return False
    return decided(answers, remaining) if rule == "decided" else agree(answers, window)
