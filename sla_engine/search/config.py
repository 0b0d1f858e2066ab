"""Search settings of one request, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sla_engine.reward.readout import FORK_COLUMNS

Strategy = Literal["sample", "greedy", "sla"]
STRATEGIES: tuple[str, ...] = ("sample", "greedy", "sla")
MAX_CHUNK = 256
MAX_DEPTH = 4
MAX_LEAVES = 64  # width ** (depth + 1): the live branches one request may keep


class SearchConfigError(ValueError):
    """A setting is out of range; `field` names it (for the API's `param`)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SearchConfig:
    """`sample`: plain decoding with the request's sampling settings (no tree).
    `greedy`: plain decoding by argmax, the baseline every search is compared with.
    `sla`: Streaming Looking Ahead (REFERENCE §3): greedy chunks of `chunk` tokens, top-`width` forks at chunk
    boundaries, commit when the tree below the candidates is `depth` chunks deep. `width` 1 or `depth` 0 is
    greedy, token for token."""

    strategy: Strategy = "sample"
    width: int = 2
    chunk: int = 10
    depth: int = 2

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SearchConfigError("strategy", f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}")
        if not 1 <= self.width <= FORK_COLUMNS:
            raise SearchConfigError("width", f"width must be in 1..{FORK_COLUMNS}; got {self.width}")
        if not 1 <= self.chunk <= MAX_CHUNK:
            raise SearchConfigError("chunk", f"chunk must be in 1..{MAX_CHUNK}; got {self.chunk}")
        if not 0 <= self.depth <= MAX_DEPTH:
            raise SearchConfigError("depth", f"depth must be in 0..{MAX_DEPTH}; got {self.depth}")
        if self.max_live_branches > MAX_LEAVES:
            raise SearchConfigError(
                "width", f"width ** (depth + 1) = {self.max_live_branches} live branches; at most {MAX_LEAVES} are allowed"
            )

    @property
    def fork_width(self) -> int:
        """Children per fork: depth 0 means no look-ahead, so nothing to choose between (greedy)."""
        return self.width if self.depth > 0 else 1

    @property
    def max_live_branches(self) -> int:
        """The most engine requests one search runs at once (n^(d+1) in SLA's steady state)."""
        if self.strategy != "sla":
            return 1
        return self.fork_width ** (self.depth + 1)

    @property
    def needs_reward(self) -> bool:
        return self.strategy == "sla"

    def as_dict(self) -> dict:
        if self.strategy != "sla":
            return {"strategy": self.strategy}
        return {"strategy": self.strategy, "width": self.width, "chunk": self.chunk, "depth": self.depth}
