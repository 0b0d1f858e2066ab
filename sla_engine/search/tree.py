"""SLA's branch tree: a node is one chunk; its `path` is the branch from the response start to the chunk's end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from sla_engine.search.scored import Chunk, Readout, ScoredTokens


@dataclass(eq=False)
class Node:
    parent: "Node | None"  # dropped once the node is committed (its path holds all the search needs)
    fork: int | None  # the token this branch was forked into (None for the first chunk)
    depth: int  # 0 for the first chunk
    chunk: Chunk | None = None  # None while its request runs
    path: ScoredTokens = field(default_factory=ScoredTokens)  # response start → end of this chunk, once settled
    children: list["Node"] = field(default_factory=list)

    def settle(self, chunk: Chunk, budget: int) -> None:
        """Record the chunk's result; `budget` is the request's max_tokens."""
        self.chunk = chunk
        before = self.parent.path if self.parent else ScoredTokens()
        self.path = ScoredTokens(list(before.tokens), list(before.rewards))
        self.path.grow(chunk, budget)

    @property
    def done(self) -> bool:
        return self.chunk is not None

    @property
    def finish_reason(self) -> str | None:
        """"stop" or "length" once it can grow no more."""
        return self.path.finish_reason

    @property
    def length(self) -> int:
        return len(self.path.tokens)

    def walk(self) -> Iterator["Node"]:
        yield self
        for child in self.children:
            yield from child.walk()

    def leaves(self) -> Iterator["Node"]:
        return (n for n in self.walk() if not n.children)

    def score(self, readout: Readout = "mean") -> float:
        """SLA's commit score: the best score among the leaves below (finished leaves included)."""
        return max(leaf.path.score(readout) for leaf in self.leaves())
