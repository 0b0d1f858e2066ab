"""CARDS, segment-level rejection sampling (docs/background.md#the-other-searches), on the position stream of one
sampled request.

A segment is sampled (temperature `beta`, top-k) from the answer so far and cut before the first token
whose next-token entropy is ≥ `entropy` once it has `min_segment` tokens, or at `max_segment`; the request
is aborted at the cut, and the position at the cut gives the reward of the segment's end (same pass). With
r the answer's mean token reward including the segment and τ the threshold at the answer's new length, the
segment is accepted with probability min(1, exp((r − τ) / β)); after `max_rejections` rejections in a row
the best segment tried (highest r, first among equals) is taken. Accepted segments are committed and
streamed; the answer ends at EOS or max_tokens.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sla_engine.search.base import Search
from sla_engine.search.config import CardsConfig
from sla_engine.search.primitives import Draw, Position, write
from sla_engine.search.scored import Chunk, ScoredTokens


@dataclass(frozen=True)
class Trial:
    """One sampled segment (its `generated`: the positions produced before the cut, the one at the cut
    included; "stop" if it ended with EOS) and the decision on it."""

    at: int  # answer length before the segment
    segment: Chunk
    reward: float  # the answer's mean token reward with the segment
    tau: float
    accepted: bool  # by the acceptance draw (a forced best-of-rejected is not)


def threshold(config: CardsConfig, length: int, max_tokens: int) -> float:
    """τ: rises linearly from reward_start (empty answer) to reward_end (an answer of max_tokens)."""
    return config.reward_start + (config.reward_end - config.reward_start) * min(1.0, length / max_tokens)


def acceptance(reward: float, tau: float, beta: float) -> float:
    """The probability of accepting a segment: min(1, exp((r − τ)/β))."""
    return 1.0 if reward >= tau else math.exp((reward - tau) / beta)


class Cards(Search):
    config: CardsConfig
    counters = ("segments_accepted", "segments_rejected", "segments_forced")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tokens: list[int] = []  # committed
        self.trials: list[Trial] = []  # every segment sampled (for inspection)

    async def _commits(self) -> AsyncIterator[ScoredTokens]:
        """Accepted segments in order."""
        while True:
            segment = await self._choose()
            self.tokens += segment.tokens
            ended = segment.finish_reason == "stop"
            done = ended or len(self.tokens) >= self.max_tokens or not segment.tokens
            yield ScoredTokens(segment.tokens, segment.rewards, "stop" if ended else "length" if done else None)

    async def _choose(self) -> Chunk:
        """Sample segments until one is accepted, or the best of `max_rejections` rejected ones."""
        rejected: list[tuple[float, Chunk]] = []
        while True:
            segment = await self.branches.one(self._sample())
            reward = self.stats.answer.then(segment).mean_reward  # the answer's, were it committed
            tau = threshold(self.config, len(self.tokens) + len(segment.tokens), self.max_tokens)
            accepted = self.seeds.rng.random() < acceptance(reward, tau, self.config.beta)
            self.trials.append(Trial(len(self.tokens), segment, reward, tau, accepted))
            if accepted:
                self.stats.count("segments_accepted")
                return segment
            rejected.append((reward, segment))
            self.stats.count("segments_rejected")
            self.stats.branches_aborted += 1
            if len(rejected) >= self.config.max_rejections:
                self.stats.count("segments_forced")
                return max(rejected, key=lambda rs: rs[0])[1]  # first of equals

    async def _sample(self) -> Chunk:
        config = self.config
        limit = min(config.max_segment, self.max_tokens - len(self.tokens))
        draw = Draw(config.beta, self.seeds.next(), config.top_k)
        request_id = f"{self.request_id}-g{self.branches.started}"
        branched = self.branches.started > 1
        self.stats.branches_forked += branched

        def boundary(tokens: list[int], p: Position) -> bool:  # the segment ends where the policy is unsure
            return len(tokens) >= config.min_segment and p.entropy >= config.entropy

        segment, _ = await write(self.engine, self.prompt_ids + self.tokens, limit, draw, request_id, boundary,
                                 self.stats.branch if branched else None)
        self.stats.tokens_generated += segment.generated
        return segment
