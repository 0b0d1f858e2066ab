"""Which search a request means: every strategy's name and config class (the API's `search` schema is
generated from them, server/protocol.py), a config built from a `search` object (`make_config`), and the
rule that picks and checks one for a request (`choose_search`)."""

from __future__ import annotations

from dataclasses import asdict, fields

from sla_engine.search.config import (
    BestOfNConfig,
    CardsConfig,
    ForkRolloutsConfig,
    PlainConfig,
    RsdConfig,
    SearchConfig,
    SlaConfig,
    TreeConfig,
)
from sla_engine.search.setting_checks import SearchConfigError

CONFIG_CLASSES: tuple[type, ...] = (
    PlainConfig, SlaConfig, BestOfNConfig, ForkRolloutsConfig, CardsConfig, TreeConfig, RsdConfig,
)
CONFIGS: dict[str, type] = {
    "sample": PlainConfig, "greedy": PlainConfig, "sla": SlaConfig, "best_of_n": BestOfNConfig,
    "fork_rollouts": ForkRolloutsConfig, "cards": CardsConfig, "tree": TreeConfig, "rsd": RsdConfig,
}
STRATEGIES: tuple[str, ...] = tuple(CONFIGS)


def make_config(given: dict, default: SearchConfig | None = None) -> SearchConfig:
    """The config for a `search` object (API field or `--search` JSON): its `strategy` (left out: the
    default's, or "sla" when the default is plain decoding) and that strategy's settings; settings left out
    come from `default` when it runs the same strategy, else from the strategy's own defaults."""
    default = default or PlainConfig()
    strategy = given.get("strategy")
    if strategy is None:
        strategy = default.strategy if not isinstance(default, PlainConfig) else "sla"
    if strategy not in CONFIGS:
        raise SearchConfigError("strategy", f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    cls = CONFIGS[strategy]
    names = [f.name for f in fields(cls) if f.name != "strategy"]
    settings = {k: v for k, v in given.items() if k != "strategy"}
    for name in settings:
        if name not in names:
            known = f"its settings are {', '.join(names)}" if names else "it has no settings"
            raise SearchConfigError(name, f"'{name}' is not a setting of strategy '{strategy}'; {known}")
    base = asdict(default) if type(default) is cls and default.strategy == strategy else {}
    base = {k: v for k, v in base.items() if k != "strategy"}
    if cls is PlainConfig:
        return PlainConfig(strategy)
    return cls(**{**base, **settings})


def choose_search(given: dict | None, default: SearchConfig, *, has_reward: bool, has_target: bool) -> SearchConfig:
    """The one rule for which search a request means (the API's `search` field; `sla serve --search` with the
    server's plain default): `make_config` of what it gives, else the default — refused when the server lacks
    what the strategy needs (a reward head; for `rsd`, a target model)."""
    config = default if given is None else make_config(given, default)
    if config.needs_reward and not has_reward:
        raise SearchConfigError("strategy", f"search strategy '{config.strategy}' needs a reward head, and this "
                                            "server runs without one (sla serve --reward-head PATH)")
    if isinstance(config, RsdConfig) and not has_target:
        raise SearchConfigError("strategy", "search strategy 'rsd' needs a target model, and this server runs "
                                            "without one (sla serve --target-model NAME)")
    return config
