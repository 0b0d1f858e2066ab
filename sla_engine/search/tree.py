"""The branch tree of one request: nodes are chunks, a root-to-node walk is a branch's generated text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from sla_engine.search.branch import Chunk


@dataclass(eq=False)
class Node:
    parent: "Node | None"
    fork: int | None  # the token this branch was forked into (None for the first chunk)
    depth: int  # 0 for the first chunk
    chunk: Chunk | None = None  # None while its request runs
    finish_reason: str | None = None  # "stop" or "length" once it can grow no more
    children: list["Node"] = field(default_factory=list)
    # over all generated tokens from the response start to the end of this chunk
    reward_sum: float = 0.0
    reward_count: int = 0
    length: int = 0

    def settle(self, chunk: Chunk, budget: int) -> None:
        """Record the chunk's result; `budget` is the request's max_tokens."""
        self.chunk = chunk
        before = self.parent
        self.reward_sum = (before.reward_sum if before else 0.0) + sum(chunk.rewards)
        self.reward_count = (before.reward_count if before else 0) + len(chunk.rewards)
        self.length = (before.length if before else 0) + len(chunk.tokens)
        self.finish_reason = chunk.finish(self.length, budget)

    @property
    def done(self) -> bool:
        return self.chunk is not None

    @property
    def mean_reward(self) -> float:
        return self.reward_sum / self.reward_count if self.reward_count else float("-inf")

    def walk(self) -> Iterator["Node"]:
        yield self
        for child in self.children:
            yield from child.walk()

    def leaves(self) -> Iterator["Node"]:
        return (n for n in self.walk() if not n.children)

    def score(self) -> float:
        """SLA's commit score: the best mean reward among the leaves below (finished leaves included)."""
        return max(leaf.mean_reward for leaf in self.leaves())

    def path(self) -> list[int]:
        """The generated tokens from the response start to the end of this chunk."""
        chunks = []
        node: Node | None = self
        while node is not None:
            chunks.append(node.chunk.tokens)
            node = node.parent
        return [t for c in reversed(chunks) for t in c]
