"""Self-reward best-of-N with early pruning and adaptive N (docs/background.md#the-other-searches), on the chunk
primitive.

Samples are drawn `batch` at a time, each its own seeded engine request; with `greedy_first` the first one
is the greedy answer, so the answer best-of-N has to beat is among the candidates (a small policy's samples
are right less often than its greedy answer: docs/notes/2026-12-04-why-sla-ties-greedy-on-gsm.md). With pruning, a sample first runs to
`prune_at` tokens (one request, whose look-ahead position gives the reward at that point); the best `keep`
fraction of the batch by prefix score then continues from where it stopped (a second request over the same
path, its prefix served by the prefix cache) and the rest are dropped. After each batch, adaptive N stops
when the best finished sample's score reaches `threshold`. The samples are ranked by score (first drawn
among equals); with `prefer_finished`, a sample that ended on its own (EOS) outranks any sample cut at
max_tokens, whatever their rewards. A score is the head's read-out (scored.py): the mean token reward, or the
reward at the last token for a value head. The answer is the top-ranked sample, or with `select: "vote"`
the top-ranked of those whose final number (final_answer.py) most samples give — self-consistency over the
same samples, the head breaking ties (docs/reward-head.md: on GSM it changes fewer outcomes and gets more of
them right than the head's pick).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sla_engine.reward.weights import Readout
from sla_engine.search.base import Search
from sla_engine.search.config import BestOfNConfig
from sla_engine.search.final_answer import extract_answer
from sla_engine.search.primitives import Draw, extend
from sla_engine.search.scored import ScoredTokens


@dataclass(eq=False)
class Candidate(ScoredTokens):
    index: int = 0  # draw order


def survivors(samples: list[Candidate], keep: float, readout: Readout = "mean") -> list[Candidate]:
    """The best ceil(keep · len) samples by their score so far (at least one), in draw order."""
    count = max(1, math.ceil(keep * len(samples)))
    ranked = sorted(samples, key=lambda s: (-s.score(readout), s.index))
    kept = {id(s) for s in ranked[:count]}
    return [s for s in samples if id(s) in kept]


def ranked(samples: list[Candidate], prefer_finished: bool = False, readout: Readout = "mean") -> list[Candidate]:
    """Best first: the highest score (first drawn among equals); with `prefer_finished`, every sample that
    ended at EOS before any cut at max_tokens."""
    return sorted(samples, key=lambda s: (prefer_finished and s.finish_reason != "stop", -s.score(readout), s.index))


def best(samples: list[Candidate], prefer_finished: bool = False, readout: Readout = "mean") -> Candidate:
    return ranked(samples, prefer_finished, readout)[0]


T = TypeVar("T")


def majority(order: Sequence[T], answers: Sequence[float | None]) -> T:
    """Of `order` (best first), the first whose final answer (`answers`, one each; None: it gives none) most of
    them give; `order[0]` if none gives one."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return order[0]
    top = max(counts.values())
    return next(o for o, a in zip(order, answers) if a is not None and counts[a] == top)


class BestOfN(Search):
    config: BestOfNConfig
    counters = ("samples", "samples_pruned")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.samples: list[Candidate] = []  # every sample drawn, pruned ones included (for inspection)
        self.scoring = self.readout(self.config.score)

    async def _commits(self) -> AsyncIterator[ScoredTokens]:
        """One commit: the winning sample."""
        config, finished, drawn = self.config, [], 0
        while drawn < config.n:
            size = min(config.batch_size, config.n - drawn)
            finished += await self._batch(drawn, size)
            drawn += size
            winner = self._choose(finished)
            if config.threshold is not None and winner.score(self.scoring) >= config.threshold:
                break
        yield winner

    def _choose(self, samples: list[Candidate]) -> Candidate:
        order = ranked(samples, self.config.prefer_finished, self.scoring)
        if self.config.select == "score":
            return order[0]
        texts = (self.engine.tokenizer.decode(s.tokens, skip_special_tokens=True) for s in order)
        return majority(order, [extract_answer(t) for t in texts])

    async def _batch(self, first: int, size: int) -> list[Candidate]:
        samples = [Candidate(index=first + i) for i in range(size)]
        self.samples += samples
        self.stats.count("samples", size)
        self.stats.branches_forked += size - (first == 0)
        prune_at = self.config.prune_at if 0 < self.config.prune_at < self.max_tokens else self.max_tokens
        await self._grow(samples, prune_at)
        if prune_at < self.max_tokens and size > 1:
            kept = survivors(samples, self.config.keep, self.scoring)
            pruned = [s for s in samples if s not in kept and not s.finish_reason]
            self.stats.count("samples_pruned", len(samples) - len(kept))
            self.stats.branches_aborted += len(pruned)
            samples = kept
        await self._grow([s for s in samples if not s.finish_reason], self.max_tokens - prune_at)
        return samples

    def _draw(self, sample: Candidate) -> Draw | None:
        """How `sample` draws its tokens: None (greedy) for the first with `greedy_first`. The greedy one takes
        no seed, so the sampled ones get the seeds they would get without it, one place later."""
        if self.config.greedy_first and sample.index == 0:
            return None
        return Draw(self.config.temperature, self.seeds.next(), self.config.top_k)

    async def _grow(self, samples: list[Candidate], size: int) -> None:
        """Extend every sample by up to `size` sampled tokens (one request each, run together)."""
        tasks = [
            self.branches.start(extend(
                self.engine, self.prompt_ids + s.tokens, None, min(size, self.max_tokens - len(s.tokens)), 1,
                f"{self.request_id}-s{s.index}-{len(s.tokens)}", self._draw(s),
            ))
            for s in samples
        ]
        for s, chunk in zip(samples, await self.branches.all_of(tasks)):
            self.stats.ran(chunk, branched=bool(s.index or s.tokens))
            s.grow(chunk, self.max_tokens)
