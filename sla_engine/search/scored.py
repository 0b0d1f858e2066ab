"""The one record every search keeps: tokens with the reward of each prefix (a scored partial answer), and
`Chunk`, what one engine request adds to it.

`rewards[i]` is the reward of the prefix ending at `tokens[i]`; a final EOS token has none (nothing is read
after it), so `rewards` may be one shorter than `tokens`. How a path is scored (the read-out) is ranking.py's
rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sla_engine.reward.weights import Readout
from sla_engine.search.ranking import path_score


@dataclass(eq=False)
class ScoredTokens:
    tokens: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" (EOS) or "length" once it grows no more; None while it may

    @property
    def mean_reward(self) -> float:
        return path_score(self.rewards, "mean")

    def score(self, readout: Readout = "mean") -> float:
        """The path's score under a read-out (ranking.py)."""
        return path_score(self.rewards, readout)

    def then(self, more: ScoredTokens) -> ScoredTokens:
        """A new record: this one followed by `more` (whose finish reason it takes)."""
        return ScoredTokens(self.tokens + more.tokens, self.rewards + more.rewards, more.finish_reason)

    def add(self, more: ScoredTokens) -> None:
        """Appends `more` in place, taking its finish reason."""
        self.tokens += more.tokens
        self.rewards += more.rewards
        self.finish_reason = more.finish_reason

    def grow(self, chunk: Chunk, budget: int) -> None:
        """Appends an engine chunk; the path is finished if the chunk ended it or it reached `budget` tokens."""
        self.tokens += chunk.tokens
        self.rewards += chunk.rewards
        self.finish_reason = chunk.finish(len(self.tokens), budget)


@dataclass(eq=False)
class Chunk(ScoredTokens):
    """What one engine request added to a branch (its fork token first, if it has one), and what the engine
    said about it. Its `finish_reason` is "stop" (EOS) or None: running out of budget is the path's business."""

    next_tokens: list[int] = field(default_factory=list)  # the top next tokens after it, best first; [] if none
    generated: int = 0  # tokens the engine generated for it (a look-ahead position included)
    prompt_tokens: int = 0  # the request's prompt length
    cached_tokens: int = 0  # of which served from the prefix cache
    entropy: float | None = None  # mean next-token entropy over the positions it generated (its uncertainty)

    def finish(self, length: int, budget: int) -> str | None:
        """Why a path that is `length` tokens long with this chunk grows no more: "stop" (EOS), "length" (it
        reached `budget`, the request's max_tokens, or the context's end, where no position follows)."""
        if self.finish_reason:
            return self.finish_reason
        return "length" if length >= budget or not self.next_tokens else None
