"""One labelled policy answer in the sample bank: a line of a collection's JSON Lines files.

    {"id": "gsm/t12-s0-3#s5", "domain": "gsm", "kind": "sample", "split": "train", "item": "gsm/t12-s0-3",
     "seed": 81723, "text": "...", "token_ids": [...], "tokens": 301, "finish_reason": "stop",
     "answer": 42.0, "given": 42.0, "correct": true}
    {"id": "mbpp/14#s0", "domain": "mbpp", ..., "correct": false, "checks": [true, false, false],
     "failure": "test 1: AssertionError: "}

Kinds: `sample` (drawn at the collection's temperature with `seed`), `trunk` (the greedy answer, seed null),
`fork` (the trunk's first `fork_at` tokens, then `fork_token` — the runner-up at that position, `log_ratio`
= log p(runner-up) − log p(greedy token) — then greedy to the end; `parent` is the trunk's id and
`token_ids` the whole answer) and `rollout` (the first `fork_at` tokens of the answer `parent`, then
continued by sampling with `seed`; `token_ids` the whole answer: bank/rollouts.py). `correct` is the
evaluation's rule (sla_pipeline/domains: for GSM the final number the text commits to equals the reference,
`given` being that number or null; for MBPP every test assert passes, `checks` holding each assert's outcome
and `failure` the first reason one failed; for IFEval every instruction is followed, `checks` holding each
instruction's strict verdict), whatever the finish reason. `split` is "train" or "heldout", the validation
problems of the domain (test problems never enter the bank). Lines written before domains existed have no
`domain`: they are GSM's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from sla_pipeline.data import gsm
from sla_pipeline.data.sources import Item
from sla_pipeline.data.split import Split
from sla_pipeline.domains import DOMAINS, domain_of, grade

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
    answer: float | None  # GSM: the reference's final number
    given: float | None  # GSM: the final number the text commits to
    correct: bool
    parent: str | None = None  # fork: the trunk's id; rollout: the answer it continues
    fork_at: int | None = None  # fork: trunk tokens kept before the fork token; rollout: the parent's kept
    fork_token: int | None = None
    log_ratio: float | None = None
    domain: str = "gsm"
    checks: tuple[bool, ...] = ()  # MBPP: each test assert; IFEval: each instruction
    failure: str | None = None  # MBPP: why the code failed

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"record {self.id}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.split not in ("train", "heldout"):
            raise ValueError(f"record {self.id}: split must be 'train' or 'heldout', got {self.split!r}")
        if not isinstance(self.correct, bool):
            raise ValueError(f"record {self.id}: correct must be true or false, got {self.correct!r}")
        if self.domain not in DOMAINS:
            raise ValueError(f"record {self.id}: domain must be one of {', '.join(DOMAINS)}, got {self.domain!r}")
        if (self.domain == "gsm") != (self.answer is not None) or (
                self.answer is not None and not math.isfinite(self.answer)):
            raise ValueError(f"record {self.id}: answer must be a finite number on GSM records (only), "
                             f"got {self.answer!r}")
        if self.checks and self.correct != all(self.checks):
            raise ValueError(f"record {self.id}: correct must be whether all of its checks pass")
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
               token_ids: list[int], finish_reason: str | None, answer: float, **fork) -> BankRecord:
        """A GSM record whose `given` and `correct` are read off `text` with the evaluation's rule."""
        return cls(id, kind, split, item, seed, text, tuple(token_ids), finish_reason, answer,
                   gsm.extract_answer(text), gsm.is_correct(text, answer), **fork)

    @classmethod
    def answered(cls, item: Item, id: str, kind: Kind, seed: int | None, text: str, token_ids: list[int],
                 finish_reason: str | None, **fork) -> BankRecord:
        """A record of an answer to `item`, graded by its domain's rule (sla_pipeline/domains)."""
        if item.split == "test":
            raise ValueError(f"{item.id} is a test problem: test problems never enter the bank")
        split = "train" if item.split == "train" else "heldout"
        domain = domain_of(item)
        if domain == "gsm":
            return cls.graded(id, kind, split, item.id, seed, text, token_ids, finish_reason, item.answer, **fork)
        outcome = grade(item, text)
        return cls(id, kind, split, item.id, seed, text, tuple(token_ids), finish_reason, None, None, outcome.correct,
                   **fork, domain=domain, checks=outcome.checks, failure=outcome.failure)

    def to_json(self) -> dict:
        record = {"id": self.id, "domain": self.domain, "kind": self.kind, "split": self.split, "item": self.item,
                  "seed": self.seed, "text": self.text, "token_ids": list(self.token_ids), "tokens": self.tokens,
                  "finish_reason": self.finish_reason, "answer": self.answer, "given": self.given,
                  "correct": self.correct}
        if self.domain != "gsm":
            record.update(checks=list(self.checks), failure=self.failure)
        if self.kind == "fork":
            record.update(parent=self.parent, fork_at=self.fork_at, fork_token=self.fork_token,
                          log_ratio=self.log_ratio)
        elif self.kind == "rollout":
            record.update(parent=self.parent, fork_at=self.fork_at)
        return record

    @classmethod
    def from_json(cls, r: dict) -> BankRecord:
        token_ids = tuple(int(t) for t in r["token_ids"])
        if "tokens" in r and int(r["tokens"]) != len(token_ids):
            raise ValueError(f"record {r['id']}: tokens {r['tokens']} but {len(token_ids)} token ids")
        return cls(r["id"], r["kind"], r["split"], r["item"], r["seed"], r["text"], token_ids, r["finish_reason"],
                   None if r["answer"] is None else float(r["answer"]),
                   None if r["given"] is None else float(r["given"]), r["correct"],
                   r.get("parent"), r.get("fork_at"), r.get("fork_token"), r.get("log_ratio"),
                   r.get("domain", "gsm"), tuple(bool(c) for c in r.get("checks", ())), r.get("failure"))
