"""What a value head learns from the sample bank: per answer, the positions it is trained at and the label at
each (`sla train --loss value`, value.py).

Label (TVM, arXiv 2407.12863; OVM, 2311.09724): at answer position t, the *success rate through the prefix*
— among the problem's bank answers (samples, trunk, forks, rollouts) that begin with this answer's first
t + 1 tokens, the share that end right. A trunk's early positions, which its forks share, get the mean over
the trunk and those forks; a sibling's prefix 30 tokens past its fork, which the bank's rollouts continue
(bank/rollouts.py), gets the mean over the sibling and its rollouts; a prefix only one answer has gets that
answer's outcome (OVM's label).

Positions: the channel has no attention, so positions are independent training examples; an answer keeps
every `stride`-th position, its last scored one (the token before a final EOS, whose own reward a search
never reads), and for a trunk and its forks the positions 10, 20 and 30 tokens past each fork, counting the
fork token (`SIBLING_VIEWS`: where SLA(2, 10, d) compares siblings). A rollout is kept only past the prefix it
continues (its parent's positions are the parent's examples already). That is a few dozen positions per
answer instead of hundreds, and the backbone features of the others are never stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sla_pipeline.bank.record import BankRecord
from sla_pipeline.training.features import TokenizedResponse

SIBLING_VIEWS = (10, 20, 30)


class TrieNode:
    __slots__ = ("children", "count", "right")

    def __init__(self) -> None:
        self.children: dict[int, TrieNode] = {}
        self.count = 0
        self.right = 0


def prefix_success(answers: list[BankRecord]) -> dict[str, list[float]]:
    """Per answer id, at each position the success rate of the answers (of this list) sharing the prefix."""
    root = TrieNode()
    for a in answers:
        node = root
        for t in a.token_ids:
            node = node.children.setdefault(t, TrieNode())
            node.count += 1
            node.right += a.correct
    rates = {}
    for a in answers:
        node, rate = root, []
        for t in a.token_ids:
            node = node.children[t]
            rate.append(node.right / node.count)
        rates[a.id] = rate
    return rates


def scored_length(record: BankRecord, limit: int) -> int:
    """The positions a search can read a reward at: all but a final EOS, at most `limit`."""
    return min(record.tokens - (record.finish_reason == "stop"), limit)


def sibling_points(records: Iterable[BankRecord], views: Iterable[int]) -> dict[str, set[int]]:
    """Per trunk and fork id, the last positions `views` tokens past each fork it takes part in."""
    points: dict[str, set[int]] = defaultdict(set)
    views = set(views)
    for r in records:
        if r.kind == "fork":
            at = {r.fork_at + view - 1 for view in views}
            points[r.id] |= at
            points[r.parent] |= at
    return points


@dataclass(frozen=True)
class ValueExample:
    record: BankRecord
    response: TokenizedResponse  # features kept at `response.positions`
    labels: tuple[float, ...]  # one per kept position


def value_examples(records: list[BankRecord], prompt_ids: dict[str, list[int]], stride: int, limit: int,
                   views: Iterable[int] = SIBLING_VIEWS, reach: dict[str, int] | None = None,
                   rollout_examples: bool = True) -> list[ValueExample]:
    """Training examples for `records` (one split), labelled within each problem; `prompt_ids[item]` is the
    chat prompt as the server renders it; `views`: the look-aheads past a fork kept for both siblings. Answers
    with no scored position (an EOS alone) are left out. `reach`: per answer id, how many tokens to keep (what
    the validation choices read); answers not in it give no example but still count in their prefixes' labels.
    Without `rollout_examples` rollouts likewise only label the prefixes they continue."""
    by_item: dict[str, list[BankRecord]] = defaultdict(list)
    for r in records:
        by_item[r.item].append(r)
    points = sibling_points(records, views)
    examples = []
    for item, answers in by_item.items():
        rates = prefix_success(answers)
        for a in answers:
            if a.kind == "rollout" and not rollout_examples:
                continue
            n = scored_length(a, limit) if reach is None else min(scored_length(a, limit), reach.get(a.id, 0))
            own = a.fork_at if a.kind == "rollout" else 0  # the first position that is not its parent's
            if n <= own:
                continue
            kept = sorted({p for p in range(stride - 1, n, stride) if p >= own} | {n - 1}
                          | {p for p in points[a.id] if p < n})
            response = TokenizedResponse.from_ids(prompt_ids[item], a.token_ids[:n], kept)
            examples.append(ValueExample(a, response, tuple(rates[a.id][p] for p in kept)))
    return examples
