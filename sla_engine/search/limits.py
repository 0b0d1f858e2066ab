"""A per-server cap on live branches: a request reserves the most engine requests its search may run at once
(SearchConfig.max_live_branches) before it starts, and gives them back when it ends, however it ends."""

from __future__ import annotations


class TooManyBranches(RuntimeError):
    pass


class Reservation:
    def __init__(self, budget: "BranchBudget", branches: int):
        self.budget = budget
        self.branches = branches

    def release(self) -> None:
        """Idempotent."""
        if self.branches:
            self.budget.reserved -= self.branches
            self.branches = 0


class BranchBudget:
    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"the live-branch cap must be >= 1, got {capacity}")
        self.capacity = capacity
        self.reserved = 0

    def reserve(self, branches: int) -> Reservation:
        if self.reserved + branches > self.capacity:
            raise TooManyBranches(
                f"The server is at its cap of {self.capacity} live search branches "
                f"({self.reserved} in use, this request needs {branches}); retry later."
            )
        self.reserved += branches
        return Reservation(self, branches)
