"""What `sla bank grow` is asked to draw: one domain's problems, how many answers of each kind, with which
settings, and which jobs run in which order (grow.py runs it, manifest.py records it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sla_pipeline.bank.problems import JOBS
from sla_pipeline.bank.rollouts import RolloutSettings
from sla_pipeline.data.forks import ForkSettings
from sla_pipeline.data.sampling import SamplingSettings
from sla_pipeline.domains import DOMAINS


@dataclass(frozen=True)
class GrowPlan:
    bank: Path  # bank/<model>
    model: str
    train_sample_problems: int = 1000
    train_fork_problems: int = 1700
    validation_problems: int = 400  # forks and samples on each
    validation_samples: int = 4  # per problem: best-of-5 with the greedy answer (the trunk) first
    # train samples per problem, drawn as best-of-N draws them (temperature 0.7, top-k 20), max 512 tokens
    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(
        samples=8, temperature=0.7, top_k=20, max_tokens=512, concurrency=8))
    forks: ForkSettings = field(default_factory=lambda: ForkSettings(max_fork_at=480))
    rollouts: RolloutSettings = field(default_factory=RolloutSettings)  # at the samples' sampling settings
    slice: int = 50  # problems per job before the next job's turn
    jobs: tuple[str, ...] = JOBS  # which jobs run, in this order
    domain: str = "gsm"  # which problems: gsm, mbpp or ifeval

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown domain {self.domain!r}; known: {', '.join(DOMAINS)}")
        counts = (self.train_sample_problems, self.train_fork_problems, self.validation_problems)
        if min(counts) < 0 or self.slice < 1 or not 1 <= self.validation_samples <= 16:
            raise ValueError(f"invalid grow plan: problems {counts}, validation samples {self.validation_samples}, "
                             f"slice {self.slice}")
        if not self.jobs or set(self.jobs) - set(JOBS) or len(set(self.jobs)) != len(self.jobs):
            raise ValueError(f"jobs {list(self.jobs)}: name each of {', '.join(JOBS)} at most once")
        if self.forks.max_tokens != self.sampling.max_tokens:
            raise ValueError("forks and samples share one answer budget (max_tokens), as the evaluation does")

    def as_json(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=str))
