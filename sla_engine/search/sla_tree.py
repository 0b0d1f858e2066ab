"""SLA's branch tree and the engine requests that grow it.

A node is one chunk; its `path` is the branch from the response start to the chunk's end. A `Stream` is one
long-lived greedy engine request that feeds a chain of nodes — a node, then its first child (the most likely
fork is the greedy token, which the same request goes on to write), its first grandchild, … — so a branch's
request does not end at a chunk boundary; only the other forks start requests of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sla_engine.reward.weights import Readout
from sla_engine.search.primitives import Position
from sla_engine.search.ranking import standing
from sla_engine.search.scored import Chunk, ScoredTokens


class Stream:
    """What one request has produced: its tokens (a fork's own fork token first), the reward of each once the
    next position has arrived, the rival tokens after each (the forks at a boundary), and the nodes it feeds."""

    def __init__(self, fork: int | None, eos: frozenset[int]):
        self.tokens: list[int] = [fork] if fork is not None else []
        self.rewards: list[float] = []  # rewards[i]: of the prefix ending at tokens[i]
        self.rivals: list[tuple[int, ...]] = []  # rivals[i]: the top tokens after tokens[i]
        self.eos = eos
        self.ended = False  # the request has finished (EOS, its token budget, or the context's end)
        self.aborted = False
        self.error: BaseException | None = None
        self.nodes: list[Node] = []  # the chain it feeds, oldest first (settled ones are dropped but the last)

    def feed(self, p: Position) -> None:
        if self.tokens:  # the position after a token carries that token's reward and the forks after it
            self.rewards.append(p.reward_before)
            self.rivals.append(p.rivals)
        self.tokens.append(p.token)

    def chunk(self, start: int, size: int) -> Chunk | None:
        """The chunk of `size` tokens from `start` once it is known: its tokens and rewards, and the forks
        after it (none when it ended: EOS, or the request's end before a next position)."""
        end = start + size
        tokens = self.tokens[start:end]
        if self.eos & set(tokens):
            stop = start + next(i for i, t in enumerate(tokens) if t in self.eos)
            if len(self.rewards) >= stop or self.ended:
                return Chunk(self.tokens[start: stop + 1], self.rewards[start: stop], "stop")
            return None
        if len(self.rewards) >= end:
            return Chunk(tokens, self.rewards[start:end], None, list(self.rivals[end - 1]))
        if self.ended:  # the budget or the context ran out first: no next position, no forks
            return Chunk(tokens, self.rewards[start:end], None, [])
        return None


@dataclass(eq=False)
class Node:
    parent: Node | None  # dropped once the node is committed (its path holds all the search needs)
    fork: int | None  # the token this branch was forked into (None for the first chunk)
    depth: int  # 0 for the first chunk
    stream: Stream | None = None  # the request that writes this chunk (None: a fork into EOS, ended at once)
    start: int = 0  # where the chunk begins in its stream's tokens
    size: int = 0  # the tokens the chunk is to have (fewer where the answer's budget ends)
    emitted: int = 0  # tokens already streamed to the client (a lone candidate streams as it is written)
    rewarded: int = 0  # of which the rewards went out too
    chunk: Chunk | None = None  # None while it is being written
    path: ScoredTokens = field(default_factory=ScoredTokens)  # response start → end of this chunk, once settled
    children: list[Node] = field(default_factory=list)

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

    def walk(self) -> Iterator[Node]:
        """This node and every node below, parents before children, siblings in fork order (a stack, not
        recursion: looking ahead to the end, a rollout is a chain of max_tokens / chunk nodes)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def leaves(self) -> Iterator[Node]:
        return (n for n in self.walk() if not n.children)

    def rank(self, readout: Readout = "mean", prefer_finished: bool = False) -> tuple[bool, float]:
        """SLA's commit key: the best score among the leaves below (finished leaves included); with
        `prefer_finished`, a leaf that ended at EOS first: (ended at EOS, score)."""
        return max(standing(leaf.path.score(readout), leaf.finish_reason, prefer_finished) for leaf in self.leaves())
