"""Fork rollouts: the greedy answer and its forks, each read to the end (docs/strategies.md).

SLA chooses between siblings a few chunks past the fork, where no head trained here ranks them above chance;
read whole, the same siblings are ranked right four times in five (docs/reward-head.md, "Looking ahead to the
end"). This search makes that choice with the look-ahead reaching the end of the answer:

    trunk     the greedy answer, one request streaming each position's top-2 tokens (min_p-filtered by
              `fork_min_p`) and, one position past its end, the reward of its last token
    forks     `fork_points`: at chunk boundaries (every `chunk` tokens, at most `last_fork_at` tokens in) where
              the runner-up token survives the min_p filter, up to `forks` of them spread evenly; each is the
              trunk up to the boundary, the runner-up token, then greedy decoding to the end — one request
              whose prompt the prefix cache serves
    answer    the best of trunk and forks as best-of-N ranks its samples (ranking.py: the head's read-out
              over the whole answer, first drawn among equals; with `prefer_finished`, one that ended at EOS
              before any cut at max_tokens)

The rule that picks the fork points is the one the sample bank's forks are drawn by (sla_pipeline/data/forks.py
imports it), so an offline replay over the bank is this search's choice. What every candidate shares — the
trunk before its first fork point — is committed as soon as the trunk is written; the rest once the forks
are ranked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from sla_engine.search.base import Search
from sla_engine.search.best_of_n import Candidate
from sla_engine.search.config import ForkRolloutsConfig
from sla_engine.search.primitives import extend, reward_engine, write
from sla_engine.search.ranking import by_score, ranked
from sla_engine.search.scored import ScoredTokens


def runner_up(token: int, rivals: Sequence[int]) -> int | None:
    """The most likely token other than `token` among a position's (min_p-filtered) top tokens, if any."""
    return next((t for t in rivals if t != token), None)


def fork_points(runner_ups: Sequence[int | None], chunk: int, last: int, most: int,
                uncertainty: Sequence[float] | None = None) -> list[tuple[int, int]]:
    """Where the answer whose position i could have been `runner_ups[i]` (None: no plausible runner-up) forks:
    (tokens kept before the fork, the fork token) at the boundaries every `chunk` tokens, at most `last`
    tokens in and before the answer's last token, that have a runner-up; at most `most` of them, spread
    evenly over the eligible ones (the first always among them) — or, given each position's `uncertainty`
    (the entropy its token was drawn from), the `most` where the policy was least sure (the earlier among
    equals), in answer order."""
    eligible = [(at, runner_ups[at]) for at in range(chunk, min(len(runner_ups) - 1, last) + 1, chunk)
                if runner_ups[at] is not None]
    if len(eligible) <= most:
        return eligible
    if uncertainty is not None:
        chosen = sorted(eligible, key=lambda point: -uncertainty[point[0]])[:most]
        return sorted(chosen)
    step = len(eligible) / most
    return [eligible[int(i * step)] for i in range(most)]


class ForkRollouts(Search):
    config: ForkRolloutsConfig
    counters = ("forks",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        reward_engine(self.engine)
        self.scoring = self.readout(self.config.score)
        self.candidates: list[Candidate] = []  # the trunk, then its forks (for inspection)

    async def _commits(self) -> AsyncIterator[ScoredTokens]:
        """The trunk before its first fork point, then the rest of the best candidate (or the trunk whole,
        when it has no fork point)."""
        config = self.config
        trunk, runner_ups, entropies = await self._trunk()
        points = fork_points(runner_ups, config.chunk, config.last_fork_at, config.forks,
                             entropies if config.place == "uncertain" else None)
        self.stats.count("forks", len(points))
        self.candidates = [trunk]
        if not points:
            yield trunk
            return
        rolling = self._roll(trunk, points)  # the forks run while the shared prefix goes out
        shared = points[0][0]
        yield ScoredTokens(trunk.tokens[:shared], trunk.rewards[:shared])
        self.candidates += await self._forks(trunk, points, rolling)
        best = ranked(self.candidates, by_score(self.scoring, config.prefer_finished))[0]
        yield ScoredTokens(best.tokens[shared:], best.rewards[shared:], best.finish_reason)

    async def _trunk(self) -> tuple[Candidate, list[int | None], list[float]]:
        """The greedy answer with every token's reward, and each position's runner-up token and entropy."""
        written, kept = await write(self.engine, self.prompt_ids, self.max_tokens, None, f"{self.request_id}-trunk",
                                    width=2, fork_min_p=self.config.fork_min_p)
        self.stats.tokens_generated += written.generated
        trunk = Candidate(written.tokens, written.rewards, written.finish_reason or "length", index=0)
        return trunk, [runner_up(p.token, p.rivals) for p in kept], [p.entropy for p in kept]

    def _roll(self, trunk: Candidate, points: list[tuple[int, int]]) -> list[asyncio.Task]:
        """Start the forks at `points`, each rolled out greedily to the trunk's token budget."""
        self.stats.branches_forked += len(points)
        return [
            self.branches.start(extend(self.engine, self.prompt_ids + trunk.tokens[:at], token, self.max_tokens - at,
                                       1, f"{self.request_id}-fork{at}"))
            for at, token in points
        ]

    async def _forks(self, trunk: Candidate, points: list[tuple[int, int]], rolling: list[asyncio.Task],
                     ) -> list[Candidate]:
        forks = []
        for index, ((at, _), chunk) in enumerate(zip(points, await self.branches.all_of(rolling)), start=1):
            self.stats.ran(chunk)
            fork = Candidate(trunk.tokens[:at], trunk.rewards[:at], index=index)
            fork.grow(chunk, self.max_tokens)
            forks.append(fork)
        return forks
