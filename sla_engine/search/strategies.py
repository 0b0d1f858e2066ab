"""The search each config runs (`make_search`); every search derives from `base.Search`."""

from __future__ import annotations

from sla_engine.engine import Engine
from sla_engine.search.base import Search
from sla_engine.search.best_of_n import BestOfN
from sla_engine.search.cards import Cards
from sla_engine.search.config import (
    BestOfNConfig,
    CardsConfig,
    ForkRolloutsConfig,
    RsdConfig,
    SearchConfig,
    SlaConfig,
    TreeConfig,
)
from sla_engine.search.fork_rollouts import ForkRollouts
from sla_engine.search.rsd import Rsd
from sla_engine.search.sla import SlaSearch
from sla_engine.search.stats import SearchStats
from sla_engine.search.tree_sampling import TreeSampling

SEARCHES: dict[type, type[Search]] = {
    SlaConfig: SlaSearch, BestOfNConfig: BestOfN, ForkRolloutsConfig: ForkRollouts, CardsConfig: Cards,
    TreeConfig: TreeSampling,
}


def make_search(
    config: SearchConfig, engine: Engine, prompt_ids: list[int], max_tokens: int, stats: SearchStats,
    request_id: str, seed: int | None = None, target: Engine | None = None,
) -> Search:
    """`seed` makes the sampling strategies reproducible; `target` is the larger model `rsd` rewrites with."""
    if isinstance(config, RsdConfig):
        if target is None:
            raise ValueError("strategy 'rsd' needs a target engine")
        return Rsd(engine, target, prompt_ids, config, max_tokens, stats, request_id)
    if type(config) not in SEARCHES:
        raise ValueError(f"strategy {config.strategy!r} is plain decoding, not a search")
    return SEARCHES[type(config)](engine, prompt_ids, config, max_tokens, stats, request_id, seed=seed)
