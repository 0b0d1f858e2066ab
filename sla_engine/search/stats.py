"""What a search did, reported per response (`search_stats`) and summed into Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from sla_engine.search.scored import Chunk, ScoredTokens


@dataclass
class SearchStats:
    settings: dict = field(default_factory=dict)  # the config's as_dict()
    tokens_generated: int = 0  # by every engine request of the search, look-ahead and pruned branches included
    tokens_emitted: int = 0  # committed to the client
    branches_forked: int = 0  # branch requests started besides the first (forks, samples, retries, rewrites)
    branches_aborted: int = 0  # branches pruned, rejected or cancelled while running
    branch_prompt_tokens: int = 0  # prompt tokens of those branch requests
    branch_cached_tokens: int = 0  # of which served from the prefix cache
    peak_live_branches: int = 0  # the most branch requests running at once
    answer: ScoredTokens = field(default_factory=ScoredTokens)  # what was committed so far, with its rewards
    counters: dict[str, int | float] = field(default_factory=dict)  # the strategy's own (samples, steps, ...)

    def ran(self, chunk: Chunk, branched: bool = True) -> None:
        """Count one finished chunk request; `branched`: it was started besides the search's first request."""
        self.tokens_generated += chunk.generated
        if branched:
            self.branch(chunk.prompt_tokens, chunk.cached_tokens)

    def branch(self, prompt_tokens: int, cached_tokens: int) -> None:
        """Count the prompt of one branch request (any request besides the search's first)."""
        self.branch_prompt_tokens += prompt_tokens
        self.branch_cached_tokens += cached_tokens

    def committed(self, piece: ScoredTokens) -> None:
        self.tokens_emitted += len(piece.tokens)
        self.answer.add(piece)

    def count(self, name: str, n: int | float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def live(self, n: int) -> None:
        self.peak_live_branches = max(self.peak_live_branches, n)

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        return self.branch_cached_tokens / self.branch_prompt_tokens if self.branch_prompt_tokens else None

    @property
    def mean_reward(self) -> float | None:
        """Of the committed tokens that have a reward (None without any)."""
        return self.answer.mean_reward if self.answer.rewards else None

    def as_dict(self) -> dict:
        return {
            **self.settings,
            "tokens_generated": self.tokens_generated,
            "tokens_emitted": self.tokens_emitted,
            "branches_forked": self.branches_forked,
            "branches_aborted": self.branches_aborted,
            "prefix_cache_hit_rate": self.prefix_cache_hit_rate,
            "mean_reward": self.mean_reward,
            **self.counters,
        }
