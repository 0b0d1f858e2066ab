"""Whether a GSM answer is right: the final number on tricky formats, references, float tolerance."""

from __future__ import annotations

import pytest

from sla_pipeline.data.gsm import extract_answer, is_correct, reference_answer


@pytest.mark.parametrize("text, value", [
    (r"so the total is \boxed{1,234}.", 1234),
    (r"\boxed{\$18.50}", 18.5),
    (r"\boxed{\frac{3}{4}}", 0.75),
    ("She pays 3 + 4 = 7 dollars.\n#### 7", 7),
    ("#### 1,000 apples", 1000),
    ("The answer is: -3 degrees.", -3),
    ("The answer is $42.", 42),
    ("First 12 cookies, then 30 cookies in all.", 30),
    ("It costs 12.5%.", 12.5),
    (r"earlier \boxed{5}, corrected: \boxed{6} and then 99 more words 100", 6),
    ("no number at all", None),
    ("#### 19/2", 9.5),
    (r"\boxed{3 / 4}", 0.75),
    ("Half of 19 is 19/2.", 9.5),  # the last-number fallback reads a trailing fraction, not its denominator
    ("24/2 = 12 each, 3 friends", 3),
])
def test_gsm_final_number_on_tricky_formats(text, value):
    assert extract_answer(text) == value


def test_gsm_reference_answers_read_commas_and_fractions_and_refuse_a_missing_one():
    assert reference_answer("3 + 4 = 7\n#### 1,007") == 1007
    assert reference_answer("half of 19\n#### 19/2") == 9.5  # GSM-symbolic has such answers
    with pytest.raises(ValueError, match="####"):
        reference_answer("7 apples")


def test_gsm_correctness_tolerates_float_formatting_only():
    assert is_correct(r"\boxed{10.0}", 10)
    assert not is_correct(r"\boxed{10.01}", 10)
    assert not is_correct("I cannot tell.", 10)
