"""Search over branches on one vLLM engine (two for `rsd`): the scored-tokens record every search keeps
(scored.py), the engine-request primitives (primitives.py), the strategies built on them (SLA, best-of-N,
fork rollouts, CARDS, tree sampling, reward-guided speculative decoding), their settings (config.py) and
which one a request means (choose.py)."""

from sla_engine.search.base import Search
from sla_engine.search.choose import choose_search, make_config
from sla_engine.search.config import (
    BestOfNConfig,
    CardsConfig,
    ForkRolloutsConfig,
    PlainConfig,
    RsdConfig,
    SearchConfig,
    SearchConfigError,
    SlaConfig,
    StrategyConfig,
    TreeConfig,
)
from sla_engine.search.primitives import Draw, complete, extend
from sla_engine.search.scored import Chunk, ScoredTokens
from sla_engine.search.sla import SlaSearch
from sla_engine.search.stats import SearchStats
from sla_engine.search.strategies import make_search
from sla_engine.search.text import CommittedText

__all__ = [
    "BestOfNConfig", "CardsConfig", "Chunk", "CommittedText", "Draw", "ForkRolloutsConfig", "PlainConfig",
    "RsdConfig", "ScoredTokens", "Search", "SearchConfig", "SearchConfigError", "SearchStats", "SlaConfig",
    "SlaSearch", "StrategyConfig", "TreeConfig", "choose_search", "complete", "extend", "make_config", "make_search",
]
