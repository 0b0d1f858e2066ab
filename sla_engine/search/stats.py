"""What a search did, reported per response (`search_stats`) and summed into Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SearchStats:
    settings: dict = field(default_factory=dict)  # SearchConfig.as_dict()
    tokens_generated: int = 0  # by every engine request of the search, look-ahead and pruned branches included
    tokens_emitted: int = 0  # committed to the client
    branches_forked: int = 0  # branch requests started at a fork
    branches_aborted: int = 0  # branches pruned at a commit or cancelled while running
    branch_prompt_tokens: int = 0  # prompt tokens of forked branch requests
    branch_cached_tokens: int = 0  # of which served from the prefix cache
    peak_live_branches: int = 0  # the most branch requests running at once
    reward_sum: float = 0.0  # over the committed tokens that have a reward
    reward_count: int = 0

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        return self.branch_cached_tokens / self.branch_prompt_tokens if self.branch_prompt_tokens else None

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.reward_count if self.reward_count else None

    def as_dict(self) -> dict:
        return {
            **self.settings,
            "tokens_generated": self.tokens_generated,
            "tokens_emitted": self.tokens_emitted,
            "branches_forked": self.branches_forked,
            "branches_aborted": self.branches_aborted,
            "prefix_cache_hit_rate": self.prefix_cache_hit_rate,
            "mean_reward": self.mean_reward,
        }
