"""Committed tokens become text: stop strings held back and cut, special tokens skipped."""

from __future__ import annotations

from sla_engine.search import (
    CommittedText,
)


class CharTokenizer:
    """One character per id, 0 is a special token."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids if not (skip_special_tokens and i == 0))


def ids(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_committed_text_holds_back_possible_stop_prefixes_and_stops():
    text = CommittedText(CharTokenizer(), stop=["END"])
    assert text.add(ids("hello E")) == "hello"  # "E" might start "END"
    assert text.add(ids("X wor")) == " EX w"
    assert text.add(ids("ld EN")) == "orld "  # the last len("END") - 1 characters wait
    assert text.add(ids("D tail")) == "" and text.stopped  # "EN" + "D" completes the stop string


def test_committed_text_flushes_at_the_end_and_skips_special_tokens():
    text = CommittedText(CharTokenizer())
    assert text.add(ids("ab")) == "ab"
    assert text.add(ids("c") + [0], last=True) == "c" and not text.stopped
