"""Task families whose answers are checked exactly, with no judge (docs/domains.md):

    gsm     GSM-symbolic word problems: the final number (data/gsm.py)
    mbpp    MBPP Python tasks: the code passes the problem's test asserts, run in the sandbox (mbpp.py)
    ifeval  IFEval prompts and the training prompts made like them: every instruction's checker passes
            (ifeval.py, if_train.py)

`grade(item, text)` is the one rule the bank, the evaluation and the analyses use.
"""

from __future__ import annotations

from sla_pipeline.data import gsm
from sla_pipeline.data.sources import Item
from sla_pipeline.domains import ifeval, mbpp
from sla_pipeline.domains.outcome import Outcome

DOMAINS = ("gsm", "mbpp", "ifeval")
SOURCES = {"gsm": "gsm", "mbpp": "mbpp", "ifeval": "ifeval", "iftrain": "ifeval"}  # item source -> domain


def domain_of(item: Item) -> str:
    if item.source not in SOURCES:
        raise ValueError(f"items of {item.source!r} are not checked exactly; checked sources: {', '.join(SOURCES)}")
    return SOURCES[item.source]


def grade(item: Item, text: str) -> Outcome:
    domain = domain_of(item)
    if domain == "gsm":
        return Outcome(gsm.is_correct(text, item.answer))
    return (mbpp if domain == "mbpp" else ifeval).grade(item, text)
