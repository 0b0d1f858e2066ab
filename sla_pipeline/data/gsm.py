"""Whether a GSM answer is right: its final number (the rule in sla_engine/search/final_answer.py, shared with
the server's majority vote) equals the reference's. GSM-symbolic's own reference answers are read with the
same rule.
"""

from __future__ import annotations

import math

from sla_engine.search.final_answer import extract_answer, first_number

__all__ = ["extract_answer", "is_correct", "reference_answer"]


def reference_answer(solution: str) -> float:
    """The final answer of a reference solution: the number (or fraction) after its last "####"."""
    value = first_number(solution.rsplit("####", 1)[1]) if "####" in solution else None
    if value is None:
        raise ValueError(f"reference solution without a final '#### <number>': {solution[-80:]!r}")
    return value


def is_correct(text: str, answer: float) -> bool:
    value = extract_answer(text)
    return value is not None and math.isclose(value, answer, rel_tol=1e-6, abs_tol=1e-6)
