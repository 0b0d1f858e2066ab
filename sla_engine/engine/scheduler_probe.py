"""A vLLM stat logger that keeps the engine scheduler's latest request counts.

vLLM sends scheduler stats with every engine step, so these counts are fresh whenever the engine runs;
after the engine goes idle they are the counts of its last step.
"""

from __future__ import annotations

from dataclasses import dataclass

from vllm.v1.metrics.loggers import StatLoggerBase


@dataclass
class SchedulerCounts:
    running: int = 0
    waiting: int = 0
    steps: int = 0  # scheduler stats received so far


class SchedulerProbe(StatLoggerBase):
    def __init__(self, counts: SchedulerCounts):
        self.counts = counts

    def record(self, scheduler_stats, iteration_stats, mm_cache_stats=None, engine_idx: int = 0) -> None:
        if scheduler_stats is not None:
            self.counts.running = scheduler_stats.num_running_reqs
            self.counts.waiting = scheduler_stats.num_waiting_reqs + scheduler_stats.num_skipped_waiting_reqs
            self.counts.steps += 1

    def log_engine_initialized(self) -> None:
        pass
