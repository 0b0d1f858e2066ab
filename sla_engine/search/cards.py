"""CARDS, segment-level rejection sampling (REFERENCE §5), on the position stream of one sampled request.

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
from contextlib import aclosing
from dataclasses import dataclass
from typing import AsyncIterator

from sla_engine.search.branch import Sampling, positions
from sla_engine.search.branches import Commit, Search
from sla_engine.search.config import CardsConfig


@dataclass(frozen=True)
class Segment:
    tokens: list[int]
    rewards: list[float]  # of the prefixes ending at its tokens (none for an EOS token, or at the context's end)
    ended: bool  # with EOS
    generated: int  # positions the request produced before the cut (the one at the cut included)


@dataclass(frozen=True)
class Trial:
    """One sampled segment and the decision on it."""

    at: int  # answer length before the segment
    segment: Segment
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

    def mean_with(self, segment: Segment) -> float:
        """The answer's mean token reward if `segment` were committed (the stats sum the committed ones)."""
        count = self.stats.reward_count + len(segment.rewards)
        return (self.stats.reward_sum + sum(segment.rewards)) / count if count else float("-inf")

    async def commits(self) -> AsyncIterator[Commit]:
        """Accepted segments in order. Closing the generator early aborts the segment being sampled."""
        try:
            while True:
                segment = await self._choose()
                self.tokens += segment.tokens
                self.stats.committed(segment.tokens, segment.rewards)
                done = segment.ended or len(self.tokens) >= self.max_tokens or not segment.tokens
                finish = "stop" if segment.ended else "length" if done else None
                yield Commit(segment.tokens, finish)
                if finish:
                    return
        finally:
            await self.branches.close()

    async def _choose(self) -> Segment:
        """Sample segments until one is accepted, or the best of `max_rejections` rejected ones."""
        rejected: list[tuple[float, Segment]] = []
        while True:
            [segment] = await self.branches.all_of([self.branches.start(self._sample())])
            reward = self.mean_with(segment)
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

    async def _sample(self) -> Segment:
        config, path = self.config, self.prompt_ids + self.tokens
        limit = min(config.max_segment, self.max_tokens - len(self.tokens))
        look_ahead = len(path) + limit < self.engine.max_model_len
        tokens, before, ended, generated = [], [], False, 0
        sampling = Sampling(config.beta, self.seeds.next(), config.top_k)
        request_id = f"{self.request_id}-g{self.branches.started}"
        branched = self.branches.started > 1
        self.stats.branches_forked += branched
        on_prompt = self.stats.branch if branched else None
        async with aclosing(positions(self.engine, path, limit + look_ahead, sampling, request_id, on_prompt)) as stream:
            async for p in stream:
                generated += 1
                before.append(p.reward_before)
                if len(tokens) == limit or (len(tokens) >= config.min_segment and p.entropy >= config.entropy):
                    break  # the cut: this position only gives the reward of the segment's end
                tokens.append(p.token)
                if p.token in self.engine.eos_token_ids:
                    ended = True
                    break
        self.stats.tokens_generated += generated
        return Segment(tokens, before[1 : len(tokens) + 1 - ended] if tokens else [], ended, generated)
