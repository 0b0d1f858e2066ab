"""Search over branch trees on one vLLM engine: the chunk primitive, the tree, and the strategies."""

from sla_engine.search.branch import Chunk, extend
from sla_engine.search.config import SearchConfig, SearchConfigError
from sla_engine.search.sla import Commit, SlaSearch
from sla_engine.search.stats import SearchStats
from sla_engine.search.text import CommittedText

__all__ = [
    "Chunk", "Commit", "CommittedText", "SearchConfig", "SearchConfigError", "SearchStats",
    "SlaSearch", "extend",
]
