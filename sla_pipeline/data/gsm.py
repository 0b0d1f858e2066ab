"""The final number of a GSM answer, and whether it is right.

Models answer in many shapes: "\\boxed{1,234}", "#### 42", "The answer is $18.50.", "= 7 apples". The rule,
in order: the last \\boxed{...}; else the number after the last "####"; else the number after the last
"answer is" / "answer:"; else the last number in the text. Thousands separators, currency signs, percent
signs and trailing units or full stops are ignored; a final answer written as a fraction ("#### 19/2",
"\\boxed{\\frac{3}{4}}", "so each gets 19/2.") is its value. GSM-symbolic's own reference answers are read
with the same rule.
"""

from __future__ import annotations

import math
import re

NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_FRACTION_RE = re.compile(rf"({NUMBER})(?:\s*/\s*({NUMBER}))?")
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_HASHES_RE = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS_RE = re.compile(r"answer\s*(?:is|:)\s*([^\n]*)", re.IGNORECASE)


def _first_number(text: str) -> float | None:
    # "\frac{3}{4}" inside a box: take numerator / denominator
    frac = re.search(r"\\d?frac\{(" + NUMBER + r")\}\{(" + NUMBER + r")\}", text)
    if frac:
        num, den = (float(g.replace(",", "")) for g in frac.groups())
        return num / den if den else None
    m = _FRACTION_RE.search(text)  # a number, or a plain fraction such as "19/2"
    return _fraction_value(m) if m else None


def _fraction_value(match: re.Match[str]) -> float | None:
    num, den = _to_float(match.group(1)), _to_float(match.group(2)) if match.group(2) else 1.0
    return num / den if num is not None and den else None


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
    fractions = list(_FRACTION_RE.finditer(text))  # "... so each gets 19/2" is 9.5, not 2
    return _fraction_value(fractions[-1]) if fractions else None


def reference_answer(solution: str) -> float:
    """The final answer of a reference solution: the number (or fraction) after its last "####"."""
    value = _first_number(solution.rsplit("####", 1)[1]) if "####" in solution else None
    if value is None:
        raise ValueError(f"reference solution without a final '#### <number>': {solution[-80:]!r}")
    return value


def is_correct(text: str, answer: float) -> bool:
    value = extract_answer(text)
    return value is not None and math.isclose(value, answer, rel_tol=1e-6, abs_tol=1e-6)
