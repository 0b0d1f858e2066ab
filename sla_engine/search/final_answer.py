"""The final number an answer commits to (GSM-style math), read the same way by the server's majority vote
(best_of_n.py, `select: "vote"`) and by the evaluation (sla_pipeline/data/gsm.py).

Models answer in many shapes: "\\boxed{1,234}", "#### 42", "The answer is $18.50.", "= 7 apples". The rule,
in order: the last \\boxed{...}; else the number after the last "####"; else the number after the last
"answer is" / "answer:"; else the last number in the text. Thousands separators, currency signs, percent
signs and trailing units or full stops are ignored; a final answer written as a fraction ("#### 19/2",
"\\boxed{\\frac{3}{4}}", "so each gets 19/2.") is its value.
"""

from __future__ import annotations

import re

NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_FRACTION_RE = re.compile(rf"({NUMBER})(?:\s*/\s*({NUMBER}))?")
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_HASHES_RE = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS_RE = re.compile(r"answer\s*(?:is|:)\s*([^\n]*)", re.IGNORECASE)


def first_number(text: str) -> float | None:
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
            value = first_number(matches[-1])
            if value is not None:
                return value
    fractions = list(_FRACTION_RE.finditer(text))  # "... so each gets 19/2" is 9.5, not 2
    return _fraction_value(fractions[-1]) if fractions else None
