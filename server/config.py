"""Server settings (HTTP side), validated at construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from sla_engine.search import PlainConfig, SearchConfig


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_body_bytes: int = 1 << 20  # 1 MiB: far above any prompt that fits a 4k-token context
    log_level: str = "info"
    search: SearchConfig = field(default_factory=PlainConfig)  # for requests without a `search` field
    max_live_branches: int = 512  # engine requests all searches together may run; beyond it → 429
    max_concurrent_requests: int = 256  # chat completions admitted at once; beyond it → 429
    max_tokens_cap: int | None = None  # largest max_tokens a request may ask for (None: the context length)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty (leave it unset for no key)")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be >= 1024, got {self.max_body_bytes}")
        if self.max_concurrent_requests < 1:
            raise ValueError(f"max_concurrent_requests must be >= 1, got {self.max_concurrent_requests}")
        if self.max_tokens_cap is not None and self.max_tokens_cap < 1:
            raise ValueError(f"max_tokens_cap must be >= 1, got {self.max_tokens_cap}")
        if self.max_live_branches < self.search.max_live_branches:
            raise ValueError(
                f"max_live_branches ({self.max_live_branches}) is below what one request of the default search "
                f"needs ({self.search.max_live_branches})"
            )
