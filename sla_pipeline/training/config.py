"""Training settings, validated at construction. Defaults are the paper's (docs/background.md#reward-transformer)
except where the
docs/reward-head.md says a measured choice replaced them for the Bradley–Terry head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from sla_engine.reward.channel import HeadKind
from sla_pipeline.domains import DOMAINS

LossKind = Literal["seqwise_bt", "tokenwise_bt", "cross_entropy", "value"]
BankProblems = Literal["mixed", "all", "siblings"]  # TrainConfig.problems
RolloutUse = Literal["all", "labels", "none"]  # TrainConfig.rollouts


@dataclass(frozen=True)
class TrainConfig:
    loss: LossKind = "seqwise_bt"
    head: HeadKind = "channel"
    width: int = 256
    lr: float = 5e-5
    epochs: int = 3
    batch_size: int = 32  # pairs per optimizer step
    warmup: float = 0.1  # fraction of the steps
    weight_decay: float = 0.0
    max_response_tokens: int = 256  # longer responses are cut (features and rewards alike)
    # the loss and held-out metrics see each pair only up to this many tokens past where its two responses part:
    # SLA's view of two siblings is (depth + 1) x chunk. None: whole responses
    lookahead: int | None = None
    seed: int = 0
    save_dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    stride: int = 16  # value loss: every stride-th answer position is a training example (value_data.py)
    # value loss: weight of a fork-aligned pairwise term, Bradley–Terry on train siblings 10, 20 and 30 tokens
    # past their fork (where SLA compares them); 0 leaves it out
    pair_weight: float = 0.0
    # value loss: weight of a Bradley–Terry term on train candidate pairs (a right and a wrong whole answer of one
    # problem, read by `readout`: best-of-N's choice, trained directly); 0 leaves it out
    candidate_weight: float = 0.0
    # value loss: weight of a temporal-difference consistency term, each kept position's output pulled toward the
    # value at the answer's next kept position (value.py); 0 leaves it out
    consistency_weight: float = 0.0
    # value loss: the read-out the saved head declares and its epochs are scored by ("last": the value at a path's
    # last token; "mean": the mean over the positions kept, every stride-th), and the validation choice whose
    # accuracy picks the epoch kept: SLA's siblings or best-of-N's candidates
    readout: Literal["last", "mean"] = "last"
    keep_by: Literal["siblings", "candidates"] = "siblings"
    # value loss: also score best-of-N's candidates each epoch (their whole answers are ~40 % of the backbone pass)
    validate_candidates: bool = True
    # value loss on the bank: the train problems whose answers train ("mixed": those with both a right and a wrong
    # answer; "all"; "siblings": those with a train sibling pair, where the rollouts are)
    problems: BankProblems = "mixed"
    # value loss on the bank: its rollouts label the prefixes they continue and train as answers past them ("all"),
    # only label them ("labels"), or are left out ("none", their labels too, in validation as well)
    rollouts: RolloutUse = "all"
    # value loss on the bank: whose answers train and validate (sla_pipeline/domains); the report scores the
    # validation choices per domain as well
    domains: tuple[str, ...] = ("gsm",)
    # value loss on the bank: per domain, only the first N of those train problems (None: all): the backbone pass
    # over every answer is the cost (GSM's 618 mixed problems are ~2.2M tokens, ~4 h here), and it keeps one
    # domain from drowning another
    max_problems: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in ("seqwise_bt", "tokenwise_bt", "cross_entropy", "value"):
            raise ValueError(f"loss must be seqwise_bt, tokenwise_bt, cross_entropy or value, got {self.loss!r}")
        if self.head not in ("channel", "final_hidden"):
            raise ValueError(f"head must be channel or final_hidden, got {self.head!r}")
        if min(self.width, self.epochs, self.batch_size, self.max_response_tokens, self.stride) < 1:
            raise ValueError("width, epochs, batch_size, max_response_tokens and stride must be positive")
        if self.lookahead is not None and self.lookahead < 1:
            raise ValueError(f"lookahead must be at least 1 (or None for whole responses), got {self.lookahead}")
        if self.pair_weight < 0 or (self.pair_weight and self.loss != "value"):
            raise ValueError(f"pair_weight is a value-loss term and must be >= 0, got {self.pair_weight} "
                             f"with loss {self.loss}")
        if self.candidate_weight < 0 or (self.candidate_weight and self.loss != "value"):
            raise ValueError(f"candidate_weight is a value-loss term and must be >= 0, got {self.candidate_weight} "
                             f"with loss {self.loss}")
        if self.consistency_weight < 0 or (self.consistency_weight and self.loss != "value"):
            raise ValueError(f"consistency_weight is a value-loss term and must be >= 0, got "
                             f"{self.consistency_weight} with loss {self.loss}")
        if self.readout not in ("last", "mean") or self.keep_by not in ("siblings", "candidates"):
            raise ValueError(f"readout must be last or mean and keep_by siblings or candidates, got "
                             f"{self.readout!r} and {self.keep_by!r}")
        if self.keep_by == "candidates" and not self.validate_candidates:
            raise ValueError("keep_by candidates needs validate_candidates")
        if (self.readout, self.keep_by) != ("last", "siblings") and self.loss != "value":
            raise ValueError(f"readout and keep_by choose how a value head is kept, not a {self.loss} head")
        if self.problems not in get_args(BankProblems) or self.rollouts not in get_args(RolloutUse):
            raise ValueError(f"problems must be mixed, all or siblings and rollouts all, labels or none, got "
                             f"{self.problems!r} and {self.rollouts!r}")
        if (self.problems, self.rollouts) != ("mixed", "all") and self.loss != "value":
            raise ValueError(f"problems and rollouts choose a value head's bank answers, not a {self.loss} head's")
        if not self.domains or set(self.domains) - set(DOMAINS) or len(set(self.domains)) != len(self.domains):
            raise ValueError(f"domains must name each of {', '.join(DOMAINS)} at most once, got {self.domains}")
        if self.domains != ("gsm",) and self.loss != "value":
            raise ValueError(f"domains choose a value head's bank answers, not a {self.loss} head's")
        if self.max_problems is not None and (self.max_problems < 1 or self.loss != "value"):
            raise ValueError(f"max_problems caps a value head's train problems per domain and is at least 1, got "
                             f"{self.max_problems} with loss {self.loss}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.save_dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"save_dtype must be float32, bfloat16 or float16, got {self.save_dtype!r}")
