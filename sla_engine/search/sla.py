"""Streaming Looking Ahead (docs/background.md#sla-search) on long-lived greedy requests (sla_tree.py's `Stream`).

The first chunk is one branch from the prompt. A branch that completes a chunk forks into its top-`width`
next tokens (without those less than `fork_min_p` times as likely as the first): the first of them is the
greedy token, which the branch's own request is already writing, so that child goes on in the same request;
each other child starts a request whose prompt is the branch's path and its fork token (served by the prefix
cache). The children of the last committed chunk are the *candidates*; when every leaf below them is `depth`
chunks deep (or finished), the candidate whose best leaf has the highest score is committed (the head's
read-out, scored.py: the mean reward over the leaf's tokens, the paper's rule, or a value head's reward at
its last token): its chunk is emitted, the other candidates and their subtrees are dropped (their requests
aborted), and its own subtree stays, its children becoming the next candidates and its leaves growing one more
chunk. A leaf that reaches that horizon does not wait idle: its request writes on, and what it writes is its
first child's chunk when the horizon moves down. A lone candidate — the first chunk, `width` 1, or forks
filtered away by `fork_min_p` — has nothing to be chosen against: its tokens stream as they are written. Ties
go to the more likely fork. Finished leaves (EOS, max_tokens) stay in the tree as scored leaves; once nothing
below the candidates can grow, repeated commits walk down to the best finished leaf.

With `lookahead` "end" the tree below each candidate is one greedy rollout to the end of the answer (every
node has only its greedy child, written by the request already running), and the forks are made only where
the choice is: when a chunk is committed, its runner-up tokens start their rollouts. The candidates are
compared once every rollout has finished, each read whole — the choice fork_rollouts makes, at every fork
of the committed answer instead of only greedy's.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import aclosing

from sla_engine.search.base import Search
from sla_engine.search.config import SlaConfig
from sla_engine.search.primitives import positions, reward_engine
from sla_engine.search.scored import Chunk, ScoredTokens
from sla_engine.search.sla_tree import Node, Stream


class SlaSearch(Search):
    config: SlaConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        reward_engine(self.engine)
        # chunks grown below a candidate (depth 0 implies width 1); to the end: as many as the answer has
        self.horizon = math.inf if self.config.to_end else max(self.config.depth, 1)
        self.candidate_depth = 0
        self.scoring = self.readout(self.config.score)
        self.updates: asyncio.Queue[Stream] = asyncio.Queue()  # streams that wrote something, or ended

    async def _commits(self) -> AsyncIterator[ScoredTokens]:
        candidates = [self._launch(Node(parent=None, fork=None, depth=0))]
        while True:
            if len(candidates) == 1:  # nothing to choose: stream the candidate as it is written
                best = candidates[0]
                while not best.done:
                    if piece := self._written(best):
                        yield piece
                    await self._progress()
            else:
                while not self._comparable(candidates):
                    await self._progress()
                # first of equals: the more likely fork
                best = max(candidates, key=lambda c: c.rank(self.scoring, self.config.prefer_finished))
                for loser in candidates:
                    if loser is not best:
                        self._prune(loser)
            best.parent = None  # the committed chain above is never read again
            rest = self._written(best) or ScoredTokens()
            rest.finish_reason = best.finish_reason
            yield rest
            if self.config.to_end:
                self._fork_rivals(best)
            candidates = best.children
            self.candidate_depth = best.depth + 1
            for candidate in candidates:
                for leaf in list(candidate.leaves()):
                    self._maybe_fork(leaf)

    def _written(self, node: Node) -> ScoredTokens | None:
        """The node's tokens written and not streamed yet, with the rewards that arrived since the last piece
        (a token's reward comes with the next position, so a piece may carry its predecessor's)."""
        if node.done:
            tokens, rewards = node.chunk.tokens, node.chunk.rewards
        else:
            stream, end = node.stream, node.start + node.size
            tokens, rewards = stream.tokens[node.start: end], stream.rewards[node.start: end]
        if len(tokens) <= node.emitted and (not node.done or len(rewards) <= node.rewarded):
            return None  # nothing new to show (late rewards go out with the next tokens or the chunk's end)
        piece = ScoredTokens(tokens[node.emitted:], rewards[node.rewarded:])
        node.emitted, node.rewarded = len(tokens), len(rewards)
        return piece

    def _comparable(self, candidates: list[Node]) -> bool:
        """Whether every leaf below the candidates is written and finished or at the horizon."""
        limit = self.candidate_depth + self.horizon
        return all(leaf.done and (leaf.finish_reason or leaf.depth >= limit)
                   for c in candidates for leaf in c.leaves())

    async def _progress(self) -> None:
        """Wait until some request writes; settle every node that is now complete (and fork it)."""
        touched = {await self.updates.get()}
        while not self.updates.empty():
            touched.add(self.updates.get_nowait())
        for stream in touched:
            if stream.error is not None and not stream.aborted:
                raise stream.error
            for node in list(stream.nodes):
                if not node.done and (chunk := stream.chunk(node.start, node.size)) is not None:
                    node.settle(chunk, self.max_tokens)
                    self._maybe_fork(node)
            stream.nodes = [n for n in stream.nodes[:-1] if not n.done] + stream.nodes[-1:]

    def _maybe_fork(self, node: Node) -> None:
        """Grow a settled, unfinished leaf into its top-`width` next tokens if it is above the horizon."""
        if not node.done or node.finish_reason or node.children:
            return
        if node.depth >= self.candidate_depth + self.horizon:
            return  # its request writes on; the next commit moves the horizon down
        width = 1 if self.config.to_end else self.config.fork_width  # to the end, rivals fork on commit only
        greedy, *rivals = node.chunk.next_tokens[:width]
        child = Node(parent=node, fork=greedy, depth=node.depth + 1)
        node.children.append(child)
        self._continue(node, child)  # the greedy token: the same request is writing this child already
        for token in rivals:
            self._branch(node, token)

    def _fork_rivals(self, committed: Node) -> None:
        """Looking ahead to the end: the committed chunk's runner-up tokens become candidates beside its
        greedy child, each starting a rollout of its own."""
        if committed.finish_reason or not committed.children:
            return
        for token in committed.chunk.next_tokens[1: self.config.width]:
            self._branch(committed, token)

    def _branch(self, node: Node, token: int) -> None:
        """A child of `node` through a runner-up `token`, written by a request of its own."""
        child = Node(parent=node, fork=token, depth=node.depth + 1)
        node.children.append(child)
        self._launch(child)
        self.stats.branches_forked += 1

    def _continue(self, node: Node, child: Node) -> None:
        stream = node.stream
        child.stream, child.start = stream, node.start + len(node.chunk.tokens)
        child.fork = stream.tokens[child.start]
        child.size = min(self.config.chunk, self.max_tokens - node.length)
        stream.nodes.append(child)
        if (chunk := stream.chunk(child.start, child.size)) is not None:  # written ahead, past the old horizon
            child.settle(chunk, self.max_tokens)
            self._maybe_fork(child)

    def _launch(self, node: Node) -> Node:
        """Start the request that writes `node` (its fork token, then greedy tokens to the answer's end)."""
        parent = node.parent
        done_before = parent.length if parent else 0
        node.size = min(self.config.chunk, self.max_tokens - done_before)
        if node.fork is not None and node.fork in self.engine.eos_token_ids:
            node.settle(Chunk([node.fork], [], "stop"), self.max_tokens)
            return node
        prompt = (self.prompt_ids + (parent.path.tokens if parent else [])
                  + ([node.fork] if node.fork is not None else []))
        # the answer's budget left after the fork token, and one position more: the reward of its last token
        budget = self.max_tokens - done_before - (node.fork is not None) + 1
        budget = min(budget, self.engine.max_model_len - len(prompt))
        stream = Stream(node.fork, self.engine.eos_token_ids)
        node.stream, stream.nodes = stream, [node]
        if budget < 1:  # the context is full: the fork token alone, without a reward
            stream.ended = True
            node.settle(stream.chunk(0, node.size), self.max_tokens)
            return node
        request_id = f"{self.request_id}-b{self.branches.started + 1}"  # unique: vLLM keys requests by id
        self.branches.start(self._write(stream, prompt, budget, request_id, parent is not None), stream)
        return node

    async def _write(self, stream: Stream, prompt: list[int], budget: int, request_id: str, branched: bool) -> None:
        on_prompt = self.stats.branch if branched else None
        try:
            async with aclosing(positions(self.engine, prompt, budget, None, request_id, on_prompt,
                                          self.config.fork_width, self.config.fork_min_p)) as written:
                async for p in written:
                    stream.feed(p)
                    self.stats.tokens_generated += 1
                    self.updates.put_nowait(stream)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # raised in the search's own task, by _progress
            stream.error = e
        finally:
            stream.ended = True
            self.branches.running.pop(asyncio.current_task(), None)  # no longer live
            self.updates.put_nowait(stream)

    def _prune(self, loser: Node) -> None:
        doomed = set(loser.walk())
        self.stats.branches_aborted += len(doomed)
        streams = [s for s in self.branches.running.values() if s.nodes and s.nodes[-1] in doomed]
        for s in streams:
            s.aborted = True
        self.branches.abort([t for t, s in self.branches.running.items() if s in streams])
