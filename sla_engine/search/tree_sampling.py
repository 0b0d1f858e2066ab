"""TreePO-style tree sampling (docs/background.md#the-other-searches), on the chunk primitive with sampled chunks.

Every path carries a budget: the finished paths it may still turn into. The first path holds `paths`. All
live paths grow by one sampled segment at a time, in lockstep; at each segment boundary a path whose budget
is above one forks into min(`width`, budget) paths (itself and copies, each its own seeded request from the
same prefix, which the prefix cache serves) that split its budget. A path that finishes (EOS, max_tokens,
or repeating itself) keeps one unit; the rest of its budget goes to the live paths, one unit at a time to
the most uncertain first (highest mean next-token entropy over the last segment, read out in the same pass
— the expected −log p of the path's next tokens). When no path is live and budget is left, the tree
re-branches from the start of the last segment of the best finished path (where a repeating path began to
repeat). The finished path with the highest mean token reward wins (a repeating one only if all repeat).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sla_engine.search.base import Search
from sla_engine.search.config import TreeConfig
from sla_engine.search.primitives import Draw
from sla_engine.search.ranking import by_score, ranked
from sla_engine.search.scored import Chunk, ScoredTokens

REPEAT_NGRAM = 16  # a path whose newest segment repeats a 16-token run of the path stops


@dataclass(eq=False)
class Path(ScoredTokens):
    """A path of the tree; its finish reason may also be "repetition"."""

    index: int = 0  # creation order
    budget: int = 1
    starts: list[int] = field(default_factory=list)  # where each segment began
    entropy: float = 0.0  # of the last segment

    def grow(self, chunk: Chunk, budget: int) -> None:
        self.starts.append(len(self.tokens))
        super().grow(chunk, budget)
        self.entropy = chunk.entropy if chunk.entropy is not None else 0.0
        if not self.finish_reason and repeats(self.tokens, self.starts[-1]):
            self.finish_reason = "repetition"

    def copy(self, index: int, budget: int, upto: int | None = None) -> Path:
        """A new path with this one's first `upto` tokens (all by default)."""
        upto = len(self.tokens) if upto is None else upto
        starts = [s for s in self.starts if s < upto]
        return Path(self.tokens[:upto], self.rewards[:upto], None, index, budget, starts, self.entropy)


def repeats(tokens: list[int], start: int, n: int = REPEAT_NGRAM) -> bool:
    """Whether a run of n tokens that reaches past `start` (the new segment) already occurred earlier."""
    first: dict[tuple[int, ...], int] = {}
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i : i + n])
        if gram in first and i + n > start:
            return True
        first.setdefault(gram, i)
    return False


def split(budget: int, width: int) -> list[int]:
    """A budget shared by min(width, budget) paths, as evenly as possible, larger shares first."""
    k = min(width, budget)
    base, extra = divmod(budget, k)
    return [base + 1] * extra + [base] * (k - extra)


def hand_over(spare: int, live: list[Path]) -> None:
    """Give `spare` budget units to the live paths, one at a time, most uncertain first, round robin."""
    ranked = sorted(live, key=lambda p: (-p.entropy, p.index))
    for i in range(spare):
        ranked[i % len(ranked)].budget += 1


def winner(finished: list[Path]) -> Path:
    """The best path by mean reward (ranking.py; the first created among equals), one that stopped on a
    repetition only when all did."""
    clean = [p for p in finished if p.finish_reason != "repetition"] or finished
    return ranked(sorted(clean, key=lambda p: p.index), by_score("mean"))[0]


class TreeSampling(Search):
    config: TreeConfig
    counters = ("paths_finished", "paths_repetitive", "rebranches")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.created = 0
        self.finished: list[Path] = []  # (for inspection)

    def _new(self, parent: Path | None, budget: int, upto: int | None = None) -> Path:
        self.created += 1
        if parent is None:
            return Path(index=0, budget=budget)
        self.stats.branches_forked += 1
        return parent.copy(self.created - 1, budget, upto)

    async def _commits(self) -> AsyncIterator[ScoredTokens]:
        """One commit: the winning path."""
        live, finished = [self._new(None, self.config.paths)], self.finished
        while live:
            await self.grow_each(live, self.config.segment, "p",
                                 lambda _: Draw(self.config.temperature, self.seeds.next()))
            done = [p for p in live if p.finish_reason]
            live = [p for p in live if not p.finish_reason]
            finished += done
            spare = sum(p.budget - 1 for p in done)
            for p in done:
                p.budget = 1
            if live:
                hand_over(spare, live)
            elif spare and self.stats.counters["rebranches"] < self.config.paths:
                live = [self._rebranch(finished, spare)]
            live = [child for p in live for child in self._fork(p)]
        self.stats.count("paths_finished", len(finished))
        self.stats.count("paths_repetitive", sum(p.finish_reason == "repetition" for p in finished))
        best = winner(finished)
        yield ScoredTokens(best.tokens, best.rewards,
                           "length" if best.finish_reason == "repetition" else best.finish_reason)

    def _fork(self, path: Path) -> list[Path]:
        shares = split(path.budget, self.config.width)
        path.budget = shares[0]
        return [path] + [self._new(path, share) for share in shares[1:]]

    def _rebranch(self, finished: list[Path], budget: int) -> Path:
        best = winner(finished)
        self.stats.count("rebranches")
        return self._new(best, budget, upto=best.starts[-1])
