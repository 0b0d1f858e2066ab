"""Admission control: a request is admitted only while the server is under both of its caps, concurrent
requests and live search branches (the most engine requests its search may run at once,
SearchConfig.max_live_branches), and gives both back when it ends, however it ends. Over a cap → 429."""

from __future__ import annotations

CAPS = ("requests", "branches")  # the caps a request can hit


class Overloaded(RuntimeError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # one of CAPS: the cap that was reached


class Ticket:
    def __init__(self, admission: Admission, branches: int):
        self.admission = admission
        self.branches = branches
        self.held = True

    def release(self) -> None:
        """Idempotent."""
        if self.held:
            self.admission.requests -= 1
            self.admission.branches -= self.branches
            self.held = False


class Admission:
    def __init__(self, max_requests: int, max_branches: int):
        if max_requests < 1 or max_branches < 1:
            raise ValueError(f"admission caps must be >= 1, got {max_requests} requests, {max_branches} branches")
        self.max_requests = max_requests
        self.max_branches = max_branches
        self.requests = 0
        self.branches = 0

    def admit(self, branches: int) -> Ticket:
        if self.requests >= self.max_requests:
            raise Overloaded("requests", f"The server is at its cap of {self.max_requests} concurrent requests; "
                                         "retry later.")
        if self.branches + branches > self.max_branches:
            raise Overloaded(
                "branches",
                f"The server is at its cap of {self.max_branches} live search branches "
                f"({self.branches} in use, this request needs {branches}); retry later.",
            )
        self.requests += 1
        self.branches += branches
        return Ticket(self, branches)
