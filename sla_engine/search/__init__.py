"""Search over branches on one vLLM engine (two for `rsd`): the chunk primitive, the strategies built on it
(SLA, best-of-N, CARDS, tree sampling, reward-guided speculative decoding) and their settings."""

from sla_engine.search.branch import Chunk, Sampling, extend
from sla_engine.search.branches import Commit
from sla_engine.search.config import (
    BestOfNConfig, CardsConfig, PlainConfig, RsdConfig, SearchConfig, SearchConfigError, SlaConfig, TreeConfig,
    make_config,
)
from sla_engine.search.sla import SlaSearch
from sla_engine.search.stats import SearchStats
from sla_engine.search.strategies import make_search
from sla_engine.search.text import CommittedText

__all__ = [
    "BestOfNConfig", "CardsConfig", "Chunk", "Commit", "CommittedText", "PlainConfig", "RsdConfig", "Sampling",
    "SearchConfig", "SearchConfigError", "SearchStats", "SlaConfig", "SlaSearch", "TreeConfig", "extend",
    "make_config", "make_search",
]
