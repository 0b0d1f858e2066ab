"""One judge by model and method, with the engines it needs: what `sla judge-check` validates and `sla eval`
judges with are built the same way.

A judge is a packaged causal LM, a local causal-LM folder (each method of `methods.py` / `checklist.py`), or a
sequence-classification reward model folder (ArmoRM / Skywork-Reward style: `classifier.py`, whatever the
method asked for).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sla_pipeline.judges.methods import Judge

METHODS = ("pointwise", "reference", "checklist", "pairwise")
CLASSIFIER = "classifier"


def is_classifier(name: str) -> bool:
    config = Path(name) / "config.json"
    return config.is_file() and any(a.endswith("ForSequenceClassification")
                                    for a in json.loads(config.read_text()).get("architectures") or [])


def judge_label(name: str) -> str:
    """The name a judge goes by in judge-check reports: a packaged model's canonical name, a folder's own name."""
    from sla_engine.store.catalog import CATALOG, canonical

    return canonical(name) if canonical(name) in CATALOG else Path(name).expanduser().name


def method_of(name: str, method: str) -> str:
    """The method a judge named `name` runs when asked for `method` (a classifier has only its own)."""
    if method not in METHODS:
        raise ValueError(f"unknown judge method {method!r}; known: {', '.join(METHODS)}")
    return CLASSIFIER if is_classifier(name) else method


@asynccontextmanager
async def open_judge(name: str, method: str, *, checklist_writer: str,
                     checklists: Path) -> AsyncIterator[Judge]:
    """The judge, its engine up for as long as the block runs. `checklist` also needs the model that writes
    each instruction's checklist once (kept in `checklists`); the judge's own engine when it is the same model."""
    from sla_engine.store import ModelStore
    from sla_pipeline.engines import running_engine
    from sla_pipeline.judges.checklist import ChecklistJudge, Checklists
    from sla_pipeline.judges.methods import PairwiseJudge, PointwiseJudge

    if method_of(name, method) == CLASSIFIER:
        from sla_pipeline.judges.classifier import ClassifierJudge

        yield ClassifierJudge(Path(name))
        return
    async with running_engine(name) as engine:
        if method == "checklist":
            store = ModelStore()
            same = store.resolve(checklist_writer) == store.resolve(name)
            async with nullcontext(engine) if same else running_engine(checklist_writer) as writer:
                yield ChecklistJudge(engine, Checklists(writer, checklists))
        elif method == "pairwise":
            yield PairwiseJudge(engine)
        else:
            yield PointwiseJudge(engine, use_reference=method == "reference")
