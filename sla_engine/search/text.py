"""Committed token ids → text deltas, with stop strings (branches are never detokenized, so a search
applies the request's stop strings here, to committed text only)."""

from __future__ import annotations


class CommittedText:
    def __init__(self, tokenizer, stop: list[str] | None = None):
        self.tokenizer = tokenizer
        self.stop = list(stop or [])
        # text that could be the start of a stop string is held back until it is known not to be one
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.ids: list[int] = []
        self.sent = 0  # characters of the text already handed out
        self.stopped = False

    def add(self, token_ids: list[int], last: bool = False) -> str:
        """The new text after committing `token_ids`; `last`: no more tokens will come (flush what is held).
        After a stop string is found, `stopped` is True and the text ends before it."""
        self.ids += token_ids
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        for s in self.stop:
            at = text.find(s)
            if at != -1:
                text, self.stopped, last = text[:at], True, True
        end = len(text)
        if not last:
            end -= self.hold
            while end > self.sent and text[end - 1] == "\ufffd":  # an incomplete UTF-8 sequence so far
                end -= 1
        delta = text[self.sent:end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return delta
