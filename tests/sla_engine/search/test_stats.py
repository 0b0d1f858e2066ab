"""search_stats report the settings in force."""

from __future__ import annotations

from sla_engine.search import (
    BestOfNConfig,
    SlaConfig,
)


def test_search_stats_report_the_settings_in_force():
    assert BestOfNConfig(n=4).as_dict()["batch"] == 4  # "all at once" is reported as the batch it means
    assert BestOfNConfig(n=4, batch=2).as_dict()["batch"] == 2
    # the search reports the read-out in force (base.py)
    assert SlaConfig().as_dict() == {"strategy": "sla", "width": 2, "chunk": 10, "depth": 2, "fork_min_p": 0.0,
                                     "score": None, "lookahead": "chunks", "prefer_finished": False}
