"""The final number of a GSM answer, and whether it is right.

Models answer in many shapes: "\\boxed{1,234}", "#### 42", "The answer is $18.50.", "= 7 apples". The rule,
in order: the last \\boxed{...}; else the number after the last "####"; else the number after the last
"answer is" / "answer:"; else the last number in the text. Thousands separators, currency signs, percent
signs and trailing units or full stops are ignored.
"""

from __future__ import annotations

import math
import re

NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_NUMBER_RE = re.compile(NUMBER)
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_HASHES_RE = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS_RE = re.compile(r"answer\s*(?:is|:)\s*([^\n]*)", re.IGNORECASE)


def _first_number(text: str) -> float | None:
    # "\frac{3}{4}" inside a box: take numerator / denominator
    frac = re.search(r"\\d?frac\{(" + NUMBER + r")\}\{(" + NUMBER + r")\}", text)
    if frac:
        num, den = (float(g.replace(",", "")) for g in frac.groups())
        return num / den if den else None
    m = _NUMBER_RE.search(text)
    return _to_float(m.group(0)) if m else None


def _to_float(token: str) -> float | None:
    token = token.replace(",", "")
    try:
        return float(token)
    except ValueError:
        return None


def extract_answer(text: str) -> float | None:
    """The final number the text commits to, or None if it has none."""
    for pattern in (_BOXED_RE, _HASHES_RE, _ANSWER_IS_RE):
        matches = pattern.findall(text)
        if matches:
            value = _first_number(matches[-1])
            if value is not None:
                return value
    numbers = _NUMBER_RE.findall(text)
    return _to_float(numbers[-1]) if numbers else None


def is_correct(text: str, answer: float) -> bool:
    value = extract_answer(text)
    return value is not None and math.isclose(value, answer, rel_tol=1e-6, abs_tol=1e-6)
