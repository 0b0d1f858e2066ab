"""MBPP's and IFEval's splits: disjoint, complete, and the ones the repository records."""

from __future__ import annotations

import json

import pytest

from sla_pipeline.domains.ifeval import ifeval_items
from sla_pipeline.domains.mbpp import mbpp_items
from tests.helpers.paths import ROOT

SPLITS = ROOT / "sla_pipeline" / "domains" / "splits"


@pytest.mark.download
@pytest.mark.parametrize("name, load, sides", [("mbpp", mbpp_items, ("train", "validation", "test")),
                                                ("ifeval", ifeval_items, ("validation", "test"))])
def test_each_split_is_disjoint_complete_and_the_recorded_one(name, load, sides):
    items = load()
    recorded = json.loads((SPLITS / f"{name}.json").read_text())
    by_side = {side: [int(it.id.split("/")[1]) for it in items if it.split == side] for side in sides}
    assert by_side == {side: recorded[side] for side in sides}  # stable: what the repository records
    ids = [i for side in sides for i in by_side[side]]
    assert len(ids) == len(set(ids)) == len(items) == {"mbpp": 500, "ifeval": 541}[name]
    assert [it.id for it in load(sides[-1])] == [it.id for it in items if it.split == sides[-1]]
