"""Preference pairs, the training data of the reward head: one JSON object per line.

    {"id": "gsm/t12-s0-3#1>2", "source": "gsm", "item": "gsm/t12-s0-3", "split": "train",
     "prompt": [{"role": "user", "content": "..."}], "chosen": "...", "rejected": "...",
     "label": {"method": "gsm_answer", ...}}

`label` says how the preference was decided (the GSM answer check — of two sampled answers, or of a greedy
answer and a sibling forked from it —, the judge's verdicts in both orders, a reference answer, or the
source's own label), so any pair can be audited.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from sla_pipeline.data.jsonl import BadLine, read_jsonl
from sla_pipeline.data.split import Split

SOURCES = ("gsm", "gsm_fork", "alpaca", "mtbench", "dpo_demo")


@dataclass(frozen=True)
class Pair:
    id: str
    source: str
    item: str  # the id of the prompt item it was built from
    split: Split
    prompt: tuple[dict, ...]
    chosen: str
    rejected: str
    label: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"pair {self.id}: unknown source {self.source!r}")
        if self.split not in ("train", "heldout"):
            raise ValueError(f"pair {self.id}: split must be 'train' or 'heldout', got {self.split!r}")
        if not self.prompt or not all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in self.prompt):
            raise ValueError(f"pair {self.id}: prompt must be a non-empty list of {{role, content}} messages")
        texts = (self.chosen, self.rejected)
        if not all(isinstance(t, str) and t for t in texts):
            raise ValueError(f"pair {self.id}: chosen and rejected must be non-empty strings")

    def to_json(self) -> dict:
        return {**asdict(self), "prompt": list(self.prompt)}

    @classmethod
    def from_json(cls, record: dict) -> Pair:
        return cls(record["id"], record["source"], record["item"], record["split"], tuple(record["prompt"]),
                   record["chosen"], record["rejected"], dict(record.get("label", {})))


def read_pairs(path: Path, bad: list[BadLine] | None = None) -> list[Pair]:
    return list(read_jsonl(path, Pair.from_json, bad))
