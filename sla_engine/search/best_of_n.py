"""Self-reward best-of-N with early pruning and adaptive N (docs/background.md#the-other-searches), on the chunk
primitive.

Samples are drawn `batch` at a time, each its own seeded engine request; with `greedy_first` the first one
is the greedy answer, so the answer best-of-N has to beat is among the candidates (a small policy's samples
are right less often than its greedy answer: docs/notes/2026-12-04-why-sla-ties-greedy-on-gsm.md). With
pruning, a sample first runs to `prune_at` tokens (one request, whose look-ahead position gives the reward at
that point); the best `keep` fraction of the batch — by prefix score, or with `prune_by: confidence` by the
policy's lowest mean next-token entropy over the prefix — then continues from where it stopped (a
second request over the same path, its prefix served by the prefix cache) and the rest are dropped. After
each batch, adaptive N stops when the best finished sample's score reaches `threshold`. The samples are
ranked and voted by ranking.py's rule (the head's read-out; with `prefer_finished`, a sample that ended on
its own before any cut at max_tokens). The answer is the top-ranked sample, or with `select: "vote"` the
top-ranked of those whose final number (final_answer.py) most samples give — self-consistency over the same
samples, the head breaking ties (docs/reward-head.md: on GSM it changes fewer outcomes and gets more of
them right than the head's pick).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from sla_engine.search.base import Search
from sla_engine.search.config import BestOfNConfig
from sla_engine.search.final_answer import extract_answer
from sla_engine.search.primitives import Draw
from sla_engine.search.ranking import Standing, by_score, majority, ranked, standing
from sla_engine.search.scored import ScoredTokens
from sla_engine.search.stopping import should_stop


@dataclass(eq=False)
class Candidate(ScoredTokens):
    index: int = 0  # draw order


def survivors(samples: list[Candidate], keep: float, standing_of: Callable[[Candidate], Standing]) -> list[Candidate]:
    """The best ceil(keep · len) samples by `standing_of` their prefix (at least one), in draw order."""
    count = max(1, math.ceil(keep * len(samples)))
    kept = {id(s) for s in ranked(samples, standing_of)[:count]}
    return [s for s in samples if id(s) in kept]


def by_confidence(entropy: dict[int, float | None]) -> Callable[[Candidate], Standing]:
    """A prefix's standing by the policy's confidence: the lower its mean next-token entropy (`entropy`, by
    draw index), the better; a prefix without one (nothing generated) ranks last."""
    return lambda s: standing(-entropy[s.index] if entropy.get(s.index) is not None else float("-inf"), None)


class BestOfN(Search):
    config: BestOfNConfig
    counters = ("samples", "samples_pruned", "samples_saved")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.samples: list[Candidate] = []  # every sample drawn, pruned ones included (for inspection)
        self.answers: dict[int, float | None] = {}  # final numbers of the finished samples, by draw index
        self.scoring = self.readout(self.config.score)

    async def _commits(self) -> AsyncIterator[ScoredTokens]:
        """One commit: the winning sample."""
        config, finished, drawn, size = self.config, [], 0, self.config.first_batch
        while drawn < config.n:
            size = min(size, config.n - drawn)
            finished += await self._batch(drawn, size)
            drawn += size
            winner = self._choose(finished)
            if config.threshold is not None and winner.score(self.scoring) >= config.threshold:
                break
            answers = [self._answer(s) for s in sorted(finished, key=lambda s: s.index)] if config.stop != "all" else []
            if should_stop(config.stop, answers, config.n - drawn, config.window):
                self.stats.count("samples_saved", config.n - drawn)
                break
            size = config.batch_size
        yield winner

    def _choose(self, samples: list[Candidate]) -> Candidate:
        order = ranked(samples, by_score(self.scoring, self.config.prefer_finished))
        if self.config.select == "score":
            return order[0]
        return majority(order, [self._answer(s) for s in order])

    def _answer(self, sample: Candidate) -> float | None:
        """The final number a finished sample commits to (final_answer.py), read once."""
        if sample.index not in self.answers:
            self.answers[sample.index] = extract_answer(self.engine.tokenizer.decode(sample.tokens,
                                                                                      skip_special_tokens=True))
        return self.answers[sample.index]

    async def _batch(self, first: int, size: int) -> list[Candidate]:
        samples = [Candidate(index=first + i) for i in range(size)]
        self.samples += samples
        self.stats.count("samples", size)
        self.stats.branches_forked += size - (first == 0)
        prune_at = self.config.prune_at if 0 < self.config.prune_at < self.max_tokens else self.max_tokens
        chunks = await self.grow_each(samples, prune_at, "s", self._draw)
        if prune_at < self.max_tokens and size > 1:
            prefix = (by_score(self.scoring) if self.config.prune_by == "reward"
                      else by_confidence({s.index: c.entropy for s, c in zip(samples, chunks)}))
            kept = survivors(samples, self.config.keep, prefix)
            pruned = [s for s in samples if s not in kept and not s.finish_reason]
            self.stats.count("samples_pruned", len(samples) - len(kept))
            self.stats.branches_aborted += len(pruned)
            samples = kept
        await self.grow_each([s for s in samples if not s.finish_reason], self.max_tokens - prune_at, "s", self._draw)
        return samples

    def _draw(self, sample: Candidate) -> Draw | None:
        """How `sample` draws its tokens: None (greedy) for the first with `greedy_first`. The greedy one takes
        no seed, so the sampled ones get the seeds they would get without it, one place later."""
        if self.config.greedy_first and sample.index == 0:
            return None
        return Draw(self.config.temperature, self.seeds.next(), self.config.top_k)
