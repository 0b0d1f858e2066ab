"""Prefix rollouts: the policy's own continuations of sibling answers cut where a search compares them.

For every sibling pair (a trunk and a fork whose outcomes differ, pairs.py), both answers are cut `lookahead`
tokens past where they part — 30 is what SLA(2, 10, 2) reads — and the policy continues each prefix
`per_prefix` times at the bank's sampling settings (best-of-N's: temperature 0.7, top-k 20, the same answer
budget counted from the answer's start). A prefix's share of right continuations is its Monte-Carlo value:
the prefix-success rate a value head is trained toward (TVM, arXiv 2407.12863), drawn instead of learned.
Training reads rollouts through the prefix-success labels (training/value_data.py: a rollout shares its
parent's first `fork_at` tokens); `python -m sla_pipeline.analyses.prefix_value` ranks the validation pairs
by them.

An answer that ends (EOS) inside the look-ahead is not continued: a search reads it whole. The request that
draws a prefix's rollouts from index `start` on has the seed `item_seed(f"{answer id}|{side}|{lookahead}", 0,
start)`, `side` being "right" or "wrong" (the answer's outcome), so more rollouts per prefix later draw only
the missing ones.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine
from sla_pipeline.bank.pairs import AnswerPair, sibling_pairs
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.data.sampling import SamplingSettings, item_seed
from sla_pipeline.data.sources import Item


@dataclass(frozen=True)
class RolloutSettings:
    per_prefix: int = 4  # continuations of each prefix
    lookahead: int = 30  # tokens past where the siblings part (the fork token counts): SLA(2, 10, 2)'s view
    concurrency: int = 8  # problems in flight

    def __post_init__(self) -> None:
        if not 1 <= self.per_prefix <= 16 or self.lookahead < 1 or self.concurrency < 1:
            raise ValueError(f"invalid rollout settings: per_prefix {self.per_prefix} (1..16), lookahead "
                             f"{self.lookahead} and concurrency {self.concurrency} (at least 1)")


@dataclass(frozen=True)
class Prefix:
    answer: BankRecord
    tokens: int  # the answer's first tokens that are kept
    lookahead: int

    @property
    def read_whole(self) -> bool:
        """The answer ended (EOS) inside the look-ahead: its own outcome is the prefix's value."""
        return self.tokens == self.answer.tokens and self.answer.finish_reason == "stop"

    @property
    def key(self) -> tuple[str, int]:
        return self.answer.id, self.tokens

    def seed(self, start: int = 0) -> int:
        side = "right" if self.answer.correct else "wrong"
        return item_seed(f"{self.answer.id}|{side}|{self.lookahead}", 0, start)


def pair_prefixes(pair: AnswerPair, lookahead: int) -> tuple[Prefix, Prefix]:
    """The right and the wrong sibling cut `lookahead` tokens past where they part."""
    right, wrong = pair.seen(lookahead)
    return Prefix(pair.right, right, lookahead), Prefix(pair.wrong, wrong, lookahead)


def sibling_prefixes(records: Iterable[BankRecord], lookahead: int) -> dict[str, list[Prefix]]:
    """Per problem, both sides of each sibling pair cut `lookahead` tokens past where they part, each once."""
    found: dict[str, dict[tuple[str, int], Prefix]] = {}
    for pair in sibling_pairs(records):
        for prefix in pair_prefixes(pair, lookahead):
            found.setdefault(pair.item, {})[prefix.key] = prefix
    return {item: list(prefixes.values()) for item, prefixes in found.items()}


Rollouts = dict[tuple[str, int], list[BankRecord]]  # per Prefix.key (parent id, tokens kept), in index order


def by_prefix(records: Iterable[BankRecord]) -> Rollouts:
    """The rollouts among `records`, per prefix they continue."""
    found: Rollouts = defaultdict(list)
    for r in records:
        if r.kind == "rollout":
            found[(r.parent, r.fork_at)].append(r)
    for drawn_list in found.values():
        drawn_list.sort(key=lambda r: int(r.id.rsplit("#r", 1)[1]))
    return found


def drawn(records: Iterable[BankRecord]) -> Counter:
    """Rollouts per prefix (parent id, tokens kept)."""
    return Counter({key: len(rollouts) for key, rollouts in by_prefix(records).items()})


def missing(prefixes: list[Prefix], have: Counter, per_prefix: int) -> list[Prefix]:
    return [p for p in prefixes if not p.read_whole and have[p.key] < per_prefix]


async def continue_prefix(engine: Engine, item: Item, prefix: Prefix, n: int, start: int,
                          sampling: SamplingSettings) -> list[BankRecord]:
    """Rollouts `start` .. `start + n - 1` of `prefix`, each graded whole (prefix and continuation)."""
    kept = list(prefix.answer.token_ids[:prefix.tokens])
    params = SamplingParams(n=n, temperature=sampling.temperature, top_k=sampling.top_k, seed=prefix.seed(start),
                            max_tokens=max(1, sampling.max_tokens - len(kept)),
                            output_kind=RequestOutputKind.FINAL_ONLY)
    async for result in engine.generate(engine.chat_prompt_ids(item.messages) + kept, params):
        pass
    records = []
    for c in result.outputs:
        ids = kept + list(c.token_ids)
        records.append(BankRecord.answered(
            item, f"{prefix.answer.id}@{prefix.tokens}#r{start + c.index}", "rollout", params.seed,
            engine.tokenizer.decode(ids, skip_special_tokens=True), ids, c.finish_reason,
            parent=prefix.answer.id, fork_at=prefix.tokens))
    return records


async def draw_rollouts(engine: Engine, item: Item, prefixes: list[Prefix], have: Counter,
                        settings: RolloutSettings, sampling: SamplingSettings) -> list[BankRecord]:
    """The rollouts `item`'s prefixes lack (`have`: those drawn), all of the problem's prefixes at once."""
    todo = missing(prefixes, have, settings.per_prefix)
    drawn_lists = await asyncio.gather(*(continue_prefix(engine, item, p, settings.per_prefix - have[p.key],
                                                         have[p.key], sampling) for p in todo))
    return [r for records in drawn_lists for r in records]
