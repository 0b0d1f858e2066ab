"""The evaluation sets: held-out items only, from the split that `sla data` trains on (`data/split.py`).

    alpaca   AlpacaEval instructions on the held-out side (162 of 805)          judged against greedy
    mtbench  MT-Bench first turns of held-out questions (65 of 80: the 15 with  judged against greedy
             a reference answer on the train side taught the head)
    gsm      GSM-symbolic variants of held-out templates, seed 0: the test set   exact final number
    gsm-validation  the same templates drawn with the validation seed, never a   exact final number
             test question (bank/problems.py): where settings and heads are chosen
    mbpp     MBPP's test side (~164 of 500; domains/mbpp.py)                     its test asserts pass
    mbpp-validation  MBPP's validation side (~98)                                its test asserts pass
    ifeval   IFEval's test side (337 of 541; domains/ifeval.py)                  every instruction followed
    ifeval-validation  IFEval's validation side (204)                            every instruction followed

The `checked` sets are graded by domains.grade; choose on the -validation sets, report on the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Literal

from sla_pipeline.bank.problems import validation_items
from sla_pipeline.data.sources import Item, alpaca_items, gsm_items, mtbench_items

SETS = ("alpaca", "mtbench", "gsm", "gsm-validation", "mbpp", "mbpp-validation", "ifeval", "ifeval-validation")
Kind = Literal["judged", "checked"]


@dataclass(frozen=True)
class EvalSet:
    name: str
    kind: Kind
    items: tuple[Item, ...]


def load_set(name: str, size: int | None) -> EvalSet:
    """The first `size` held-out items of a set (None: all; for the gsm sets, `size` variants are generated)."""
    if name == "gsm":
        return EvalSet(name, "checked", tuple(gsm_items("heldout", size or 200)))
    if name == "gsm-validation":
        return EvalSet(name, "checked", tuple(validation_items(size or 200)))
    if name.startswith(("mbpp", "ifeval")):
        domain, _, validation = name.partition("-")
        module = import_module(f"sla_pipeline.domains.{domain}")
        items = getattr(module, f"{domain}_items")(validation or "test")
        return EvalSet(name, "checked", tuple(items[:size] if size else items))
    if name == "alpaca":
        items = alpaca_items()
    elif name == "mtbench":
        items = mtbench_items(1)
    else:
        raise ValueError(f"unknown evaluation set {name!r}; known: {', '.join(SETS)}")
    held = [it for it in items if it.split == "heldout"]
    return EvalSet(name, "judged", tuple(held[:size] if size else held))
