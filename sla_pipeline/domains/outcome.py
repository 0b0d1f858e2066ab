"""Whether an answer is right, and the checks that decided it: one record for every domain."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    correct: bool
    checks: tuple[bool, ...] = ()  # MBPP: each test assert; IFEval: each instruction (strict); GSM: none
    failure: str | None = None  # MBPP: why the code failed ("test 1: AssertionError", "timeout", ...)

    def __post_init__(self) -> None:
        if self.checks and self.correct != all(self.checks):
            raise ValueError(f"an outcome with checks {self.checks} is correct exactly when all of them pass")
