"""One labelled policy answer in the sample bank: a line of a collection's JSON Lines files.

    {"id": "gsm/t12-s0-3#s5", "kind": "sample", "split": "train", "item": "gsm/t12-s0-3", "seed": 81723,
     "text": "...", "token_ids": [...], "tokens": 301, "finish_reason": "stop",
     "answer": 42.0, "given": 42.0, "correct": true}

Kinds: `sample` (drawn at the collection's temperature with `seed`), `trunk` (the greedy answer, seed null),
`fork` (the trunk's first `fork_at` tokens, then `fork_token` — the runner-up at that position, `log_ratio`
= log p(runner-up) − log p(greedy token) — then greedy to the end; `parent` is the trunk's id and
`token_ids` the whole answer) and `rollout` (the first `fork_at` tokens of the answer `parent`, then
continued by sampling with `seed`; `token_ids` the whole answer: bank/rollouts.py). `correct` is the
evaluation's rule (`data/gsm.py`: the final number the text commits to equals the reference), whatever the
finish reason; `given` is that number, or null.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from sla_pipeline.data import gsm
from sla_pipeline.data.split import Split

Kind = Literal["sample", "trunk", "fork", "rollout"]
KINDS = ("sample", "trunk", "fork", "rollout")


@dataclass(frozen=True)
class BankRecord:
    id: str
    kind: Kind
    split: Split
    item: str
    seed: int | None  # the request's sampling seed; None for greedy answers (trunks and forks)
    text: str
    token_ids: tuple[int, ...]
    finish_reason: str | None  # "stop" (EOS) or "length" (cut at max_tokens)
    answer: float  # the reference's final number
    given: float | None  # the final number the text commits to
    correct: bool
    parent: str | None = None  # fork: the trunk's id; rollout: the answer it continues
    fork_at: int | None = None  # fork: trunk tokens kept before the fork token; rollout: the parent's kept
    fork_token: int | None = None
    log_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"record {self.id}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.split not in ("train", "heldout"):
            raise ValueError(f"record {self.id}: split must be 'train' or 'heldout', got {self.split!r}")
        if not isinstance(self.correct, bool):
            raise ValueError(f"record {self.id}: correct must be true or false, got {self.correct!r}")
        if not math.isfinite(self.answer):
            raise ValueError(f"record {self.id}: answer must be a finite number, got {self.answer!r}")
        branched = self.kind in ("fork", "rollout")
        placed = (self.parent is not None, self.fork_at is not None)
        if placed != (branched, branched) or (self.fork_token is not None) != (self.kind == "fork"):
            raise ValueError(f"record {self.id}: parent and fork_at are set exactly on forks and rollouts, "
                             f"fork_token exactly on forks")
        last = len(self.token_ids) - (self.kind == "fork")  # a fork has its fork token after them
        if branched and not 0 <= self.fork_at <= last:
            raise ValueError(f"record {self.id}: fork_at {self.fork_at} is outside its {len(self.token_ids)} tokens")

    @property
    def tokens(self) -> int:
        return len(self.token_ids)

    @classmethod
    def graded(cls, id: str, kind: Kind, split: Split, item: str, seed: int | None, text: str,
               token_ids: list[int], finish_reason: str | None, answer: float, **fork) -> "BankRecord":
        """A record whose `given` and `correct` are read off `text` with the evaluation's rule."""
        return cls(id, kind, split, item, seed, text, tuple(token_ids), finish_reason, answer,
                   gsm.extract_answer(text), gsm.is_correct(text, answer), **fork)

    def to_json(self) -> dict:
        record = {"id": self.id, "kind": self.kind, "split": self.split, "item": self.item, "seed": self.seed,
                  "text": self.text, "token_ids": list(self.token_ids), "tokens": self.tokens,
                  "finish_reason": self.finish_reason, "answer": self.answer, "given": self.given,
                  "correct": self.correct}
        if self.kind == "fork":
            record.update(parent=self.parent, fork_at=self.fork_at, fork_token=self.fork_token,
                          log_ratio=self.log_ratio)
        elif self.kind == "rollout":
            record.update(parent=self.parent, fork_at=self.fork_at)
        return record

    @classmethod
    def from_json(cls, r: dict) -> "BankRecord":
        token_ids = tuple(int(t) for t in r["token_ids"])
        if "tokens" in r and int(r["tokens"]) != len(token_ids):
            raise ValueError(f"record {r['id']}: tokens {r['tokens']} but {len(token_ids)} token ids")
        return cls(r["id"], r["kind"], r["split"], r["item"], r["seed"], r["text"], token_ids, r["finish_reason"],
                   float(r["answer"]), None if r["given"] is None else float(r["given"]), r["correct"],
                   r.get("parent"), r.get("fork_at"), r.get("fork_token"), r.get("log_ratio"))
