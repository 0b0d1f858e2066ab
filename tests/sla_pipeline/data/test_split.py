"""The train / held-out split."""

from __future__ import annotations

import pytest

from sla_pipeline.data.split import split_of


def test_split_is_deterministic_and_sources_are_salted_separately():
    keys = [str(i) for i in range(2000)]
    first = [split_of("alpaca", k) for k in keys]
    assert first == [split_of("alpaca", k) for k in keys]
    held = first.count("heldout") / len(keys)
    assert 0.15 < held < 0.25  # 1 in 5
    assert first != [split_of("gsm", k) for k in keys]
    assert split_of("mtbench", "81", trainable=False) == "heldout"
    with pytest.raises(ValueError, match="unknown data source"):
        split_of("nope", "1")
