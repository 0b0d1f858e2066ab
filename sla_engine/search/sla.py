"""Streaming Looking Ahead (REFERENCE §3) on the chunk primitive (primitives.py) and the tree (tree.py).

The first chunk is one branch from the prompt. A branch that completes a chunk forks into its top-`width`
next tokens (without those less than `fork_min_p` times as likely as the first), each child a new branch
request that continues greedily. The children of the last committed chunk are the *candidates*; when every
branch below them is `depth` chunks deep (or finished), the
candidate whose best leaf has the highest score is committed (the head's read-out, scored.py: the mean
reward over the leaf's tokens, the paper's rule, or a value head's reward at its last token): its chunk is emitted, the other
candidates and their subtrees are dropped, and its own subtree stays (look-ahead is never regenerated), its
children becoming the next candidates and its leaves growing one more chunk. A lone candidate is committed
as soon as its chunk is done (there is nothing to choose). Ties go to the more likely fork.
Finished leaves (EOS, max_tokens) stay in the tree as scored leaves; once nothing below the candidates can
grow, repeated commits walk down to the best finished leaf.
"""

from __future__ import annotations

from typing import AsyncIterator

from sla_engine.search.base import Search
from sla_engine.search.config import SlaConfig
from sla_engine.search.primitives import extend
from sla_engine.search.scored import ScoredTokens
from sla_engine.search.tree import Node


class SlaSearch(Search):
    config: SlaConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.horizon = max(self.config.depth, 1)  # chunks grown below a candidate (depth 0 implies width 1)
        self.candidate_depth = 0
        self.scoring = self.readout(self.config.score)

    async def _commits(self) -> AsyncIterator[ScoredTokens]:
        candidates = [self._launch(Node(parent=None, fork=None, depth=0))]
        while True:
            await self._settle(candidates)
            best = max(candidates, key=lambda c: c.score(self.scoring))  # first of equals: the more likely fork
            for loser in candidates:
                if loser is not best:
                    self._prune(loser)
            best.parent = None  # the committed chain above is never read again
            yield ScoredTokens(best.chunk.tokens, best.chunk.rewards, best.finish_reason)
            candidates = best.children
            self.candidate_depth = best.depth + 1
            for candidate in candidates:
                for leaf in list(candidate.leaves()):
                    self._maybe_fork(leaf)

    async def _settle(self, candidates: list[Node]) -> None:
        """Wait until the candidates can be compared: every branch below them is done growing."""
        while self.branches.running and not (len(candidates) == 1 and candidates[0].done):
            for task, node in await self.branches.next_done():
                chunk = task.result()
                node.settle(chunk, self.max_tokens)
                self.stats.ran(chunk, branched=node.fork is not None)
                self._maybe_fork(node)

    def _maybe_fork(self, node: Node) -> None:
        """Grow a settled, unfinished leaf into its top-`width` next tokens if it is above the horizon."""
        if not node.done or node.finish_reason or node.children:
            return
        if node.depth >= self.candidate_depth + self.horizon:
            return  # held until the next commit moves the horizon down
        for token in node.chunk.next_tokens[: self.config.fork_width]:
            node.children.append(self._launch(Node(parent=node, fork=token, depth=node.depth + 1)))
            self.stats.branches_forked += 1

    def _launch(self, node: Node) -> Node:
        parent = node.parent
        done_before = parent.length if parent else 0
        path = self.prompt_ids + (parent.path.tokens if parent else [])
        size = min(self.config.chunk, self.max_tokens - done_before)
        request_id = f"{self.request_id}-b{self.branches.started + 1}"
        self.branches.start(extend(
            self.engine, path, node.fork, size, self.config.fork_width, request_id, fork_min_p=self.config.fork_min_p
        ), node)
        return node

    def _prune(self, loser: Node) -> None:
        doomed = set(loser.walk())
        self.stats.branches_aborted += len(doomed)
        self.branches.abort([t for t, n in self.branches.running.items() if n in doomed])
