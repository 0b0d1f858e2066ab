"""Search settings of one request: one validated dataclass per strategy (docs/background.md#sla-search,
docs/background.md#the-other-searches).

Every config has `strategy`, `max_live_branches` (the most engine requests one search runs at once, which
admission control reserves), `needs_reward`, `streams_tokens` (whether the answer streams as it is decided,
or arrives in one piece once the search has picked it) and `as_dict()`.

Reward thresholds (best_of_n's `threshold`, CARDS' `reward_start`/`reward_end`, RSD's `threshold` through a
sigmoid) are in a calibrated head's unit (sla_engine/reward/calibration.py): standard deviations of the
policy's own per-token reward, 0 being its average token. With an uncalibrated head they are in raw units.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

from sla_engine.reward.columns import FORK_COLUMNS
from sla_engine.reward.weights import Readout
from sla_engine.search.setting_checks import (
    SearchConfigError,
    check_bool,
    check_float,
    check_int,
    check_readout,
)
from sla_engine.search.stopping import STOPS, Stop

MAX_CHUNK = 256
MAX_DEPTH = 4
MAX_LEAVES = 64  # width ** (depth + 1): the live branches one SLA request may keep
MAX_SAMPLES = 16
MAX_PATHS = 32
Place = Literal["spread", "uncertain"]  # where fork_rollouts forks, among the eligible chunk boundaries
PLACES: tuple[str, ...] = typing.get_args(Place)
Select = Literal["score", "vote"]  # best_of_n's answer: the best-scored sample, or a majority vote over final numbers
SELECTS: tuple[str, ...] = typing.get_args(Select)
PruneBy = Literal["reward", "confidence"]  # best_of_n's pruning: the head's prefix score, or the policy's certainty
PRUNE_BYS: tuple[str, ...] = typing.get_args(PruneBy)
Lookahead = Literal["chunks", "end"]  # SLA's look-ahead: a tree `depth` chunks deep, or a rollout to the answer's end
LOOKAHEADS: tuple[str, ...] = typing.get_args(Lookahead)


class StrategyConfig:
    """What every strategy's config shares."""

    strategy: str
    needs_reward: ClassVar[bool] = True
    streams_tokens: ClassVar[bool] = True

    @property
    def max_live_branches(self) -> int:
        return 1

    def as_dict(self) -> dict:
        return {"strategy": self.strategy, **asdict(self)}


@dataclass(frozen=True)
class PlainConfig(StrategyConfig):
    """`sample`: plain decoding with the request's sampling settings. `greedy`: argmax decoding, the baseline
    every search is compared with."""

    strategy: Literal["sample", "greedy"] = "sample"
    needs_reward: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.strategy not in ("sample", "greedy"):
            raise SearchConfigError("strategy", f"plain decoding is 'sample' or 'greedy'; got {self.strategy!r}")

    def as_dict(self) -> dict:
        return {"strategy": self.strategy}


@dataclass(frozen=True)
class SlaConfig(StrategyConfig):
    """Streaming Looking Ahead (docs/background.md#sla-search): greedy chunks of `chunk` tokens, top-`width` forks at
    chunk
    boundaries, commit when the tree below the candidates is `depth` chunks deep. `width` 1 or `depth` 0 is
    greedy, token for token. `fork_min_p` > 0 leaves out fork tokens less than `fork_min_p` times as likely
    as the most likely one (vLLM's min_p rule; 0, the paper's search, always forks into the top `width`).
    `score`: how a leaf is scored — "mean" reward over its tokens (the paper's, for a Bradley–Terry head) or
    the reward at its "last" token (a value head); left out, the head's own read-out.
    `lookahead`: "chunks", the paper's tree `depth` chunks deep; or "end": each candidate is followed by one
    greedy rollout to the end of the answer and read whole (fork_rollouts' read-out at every fork; `depth`
    is not used). `prefer_finished`: a leaf that ended at EOS outranks any that did not (a rollout cut at
    max_tokens, or a leaf still growing)."""

    width: int = 2
    chunk: int = 10
    depth: int = 2
    fork_min_p: float = 0.0
    score: Readout | None = None
    lookahead: Lookahead = "chunks"
    prefer_finished: bool = False
    strategy: ClassVar[str] = "sla"

    def __post_init__(self) -> None:
        check_int(self, "width", 1, FORK_COLUMNS)
        check_int(self, "chunk", 1, MAX_CHUNK)
        check_int(self, "depth", 0, MAX_DEPTH)
        check_float(self, "fork_min_p", 0.0, 1.0)
        check_readout(self)
        if self.lookahead not in LOOKAHEADS:
            raise SearchConfigError("lookahead", f"lookahead must be one of {', '.join(LOOKAHEADS)}; "
                                                 f"got {self.lookahead!r}")
        check_bool(self, "prefer_finished")
        if self.max_live_branches > MAX_LEAVES:
            raise SearchConfigError(
                "width",
                f"width ** (depth + 1) = {self.max_live_branches} live branches; at most {MAX_LEAVES} are allowed"
            )

    @property
    def to_end(self) -> bool:
        return self.lookahead == "end"

    @property
    def fork_width(self) -> int:
        """Children per fork: depth 0 means no look-ahead, so nothing to choose between (greedy)."""
        return self.width if self.depth > 0 or self.to_end else 1

    @property
    def max_live_branches(self) -> int:
        """The leaves of the tree below the candidates; looking ahead to the end, one rollout per candidate."""
        return self.width if self.to_end else self.fork_width ** (self.depth + 1)


@dataclass(frozen=True)
class BestOfNConfig(StrategyConfig):
    """Self-reward best-of-N (arXiv 2410.02725 with the token-level head as the scorer): up to `n` samples at
    `temperature` from the `top_k` most likely tokens (0: the whole vocabulary; with `greedy_first`, the
    first sample is the greedy answer), drawn `batch` at a time (default: all at once). Once every sample of
    a batch has `prune_at` tokens (0: never), only the best `keep` fraction go on: by the head's prefix score
    (`prune_by` "reward"), or by the policy's confidence over the prefix ("confidence": the lowest mean
    next-token entropy, DeepConf's signal, arXiv 2508.15260; no head needed).
    Adaptive N: after a batch, stop drawing when the best finished sample's score is ≥ `threshold`.
    The answer is the finished sample with the highest score (`score`: its "mean" token reward or the reward
    at its "last" token; left out, the head's own read-out, which also ranks prefixes for pruning and meets
    `threshold`); with `prefer_finished`, one that ended at EOS outranks any cut at max_tokens. `select`:
    "score" answers with the top-ranked sample, "vote" with the top-ranked of those whose final number most
    samples give (math answers; adaptive N's `threshold` is a score, so it goes with "score" only). `stop`
    (with "vote"; stopping.py): "all" draws all `n`; "decided" stops once the majority cannot change, "agree"
    once the last `window` answers agree; the first batch is then as large as the rule needs before it can
    stop, the next ones `batch` each (default 1). It is not known before the end, so a stream gets it in one
    piece."""

    n: int = 4
    temperature: float = 0.7
    top_k: int = 0
    greedy_first: bool = False
    prune_at: int = 32
    keep: float = 0.5
    prune_by: PruneBy = "reward"
    batch: int | None = None
    threshold: float | None = None
    prefer_finished: bool = False
    score: Readout | None = None
    select: Select = "score"
    stop: Stop = "all"
    window: int = 3
    strategy: ClassVar[str] = "best_of_n"
    streams_tokens: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_int(self, "n", 1, MAX_SAMPLES)
        check_float(self, "temperature", 0.0, 2.0, low_open=True)
        check_int(self, "top_k", 0, 1000)
        check_bool(self, "greedy_first")
        check_bool(self, "prefer_finished")
        check_int(self, "prune_at", 0, 1 << 16)
        check_float(self, "keep", 0.0, 1.0, low_open=True)
        if self.prune_by not in PRUNE_BYS:
            raise SearchConfigError("prune_by", f"prune_by must be one of {', '.join(PRUNE_BYS)}; "
                                                f"got {self.prune_by!r}")
        if self.batch is not None:
            check_int(self, "batch", 1, self.n)
        if self.threshold is not None:
            check_float(self, "threshold", -1e6, 1e6)
        check_readout(self)
        if self.select not in SELECTS:
            raise SearchConfigError("select", f"select must be one of {', '.join(SELECTS)}; got {self.select!r}")
        if self.select == "vote" and self.threshold is not None:
            raise SearchConfigError("threshold", "threshold stops drawing on a sample's score; select 'vote' "
                                                 "counts every sample, so it takes no threshold")
        if self.stop not in STOPS:
            raise SearchConfigError("stop", f"stop must be one of {', '.join(STOPS)}; got {self.stop!r}")
        if self.stop != "all" and self.select != "vote":
            raise SearchConfigError("stop", "stop decides when a vote has seen enough answers: it needs select "
                                            "'vote'")
        check_int(self, "window", 2, MAX_SAMPLES)

    @property
    def batch_size(self) -> int:
        """Samples per batch after the first."""
        return self.batch or (self.n if self.stop == "all" else 1)

    @property
    def first_batch(self) -> int:
        """The first batch: as many as the stop rule needs before it can stop (a strict majority of `n` for
        "decided", a window for "agree")."""
        need = {"all": 1, "decided": self.n // 2 + 1, "agree": self.window}[self.stop]
        return min(self.n, max(need, self.batch_size))

    def as_dict(self) -> dict:
        return {**super().as_dict(), "batch": self.batch_size}  # the value in force, not "all at once" as null

    @property
    def max_live_branches(self) -> int:
        return max(self.first_batch, self.batch_size)


@dataclass(frozen=True)
class CardsConfig(StrategyConfig):
    """CARDS (arXiv 2406.16306): segment-level rejection sampling. A segment is sampled at temperature `beta`
    (top-k `top_k`) and ends before the first token whose next-token entropy is ≥ `entropy` (nats) once it has
    `min_segment` tokens, or at `max_segment`. It is accepted with probability min(1, exp((r − τ)/β)), r the
    answer's mean token reward with the segment, τ rising linearly from `reward_start` to `reward_end` as the
    answer grows to max_tokens; after `max_rejections` rejections the best segment tried is taken. Accepted
    segments are committed and streamed."""

    entropy: float = 3.0
    min_segment: int = 4
    max_segment: int = 64
    beta: float = 0.7
    top_k: int = 40
    reward_start: float = 0.0
    reward_end: float = 0.5
    max_rejections: int = 20
    strategy: ClassVar[str] = "cards"

    def __post_init__(self) -> None:
        check_float(self, "entropy", 0.0, 20.0, low_open=True)
        check_int(self, "min_segment", 1, MAX_CHUNK)
        check_int(self, "max_segment", self.min_segment, MAX_CHUNK)
        check_float(self, "beta", 0.0, 2.0, low_open=True)
        check_int(self, "top_k", 1, 1000)
        check_float(self, "reward_start", -1e6, 1e6)
        check_float(self, "reward_end", -1e6, 1e6)
        check_int(self, "max_rejections", 0, 100)


@dataclass(frozen=True)
class TreeConfig(StrategyConfig):
    """TreePO-style tree sampling (arXiv 2508.17445): paths grow by sampled segments of `segment` tokens in
    lockstep; the tree aims at `paths` finished paths and never runs more than `paths` minus those finished
    at once, so a finished path's budget goes to the live ones. At each segment boundary the free budget
    becomes forks (up to `width` children per path), most uncertain paths (highest mean next-token entropy
    over their last segment) first. A path that starts repeating itself stops early; if every path stopped
    that way, the tree re-branches from where the best of them started repeating. The finished path with
    the highest mean token reward wins; it is known only at the end, so a stream gets it in one piece."""

    segment: int = 32
    width: int = 2
    paths: int = 8
    temperature: float = 0.8
    strategy: ClassVar[str] = "tree"
    streams_tokens: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_int(self, "segment", 1, MAX_CHUNK)
        check_int(self, "width", 2, FORK_COLUMNS)
        check_int(self, "paths", 1, MAX_PATHS)
        check_float(self, "temperature", 0.0, 2.0, low_open=True)

    @property
    def max_live_branches(self) -> int:
        return self.paths


@dataclass(frozen=True)
class RsdConfig(StrategyConfig):
    """Reward-guided speculative decoding (arXiv 2501.19324): the served (draft) model writes a step greedily
    — up to the first token containing a blank line, or `max_step` tokens — and the step is accepted when
    sigmoid(its mean token reward) ≥ `threshold`; otherwise the target model (`sla serve --target-model`)
    rewrites the step from the same prefix. Committed steps stream. The paper's δ = 0.7 is a process reward
    model's probability of a correct step; here the score is sigmoid of a calibrated reward, so 0.5 accepts
    the steps at least as good as the policy's average token (0.7 would ask for 0.85 standard deviations)."""

    threshold: float = 0.5
    max_step: int = 128
    strategy: ClassVar[str] = "rsd"

    def __post_init__(self) -> None:
        check_float(self, "threshold", 0.0, 1.0)
        check_int(self, "max_step", 1, 1024)


@dataclass(frozen=True)
class ForkRolloutsConfig(StrategyConfig):
    """The greedy answer and its forks, each read to the end (search/fork_rollouts.py): at the chunk boundaries
    (every `chunk` tokens, at most `last_fork_at` tokens in) where the runner-up token is at least
    `fork_min_p` times as likely as the greedy one, up to `forks` of them (`place`: "spread" evenly over those
    boundaries, or at the "uncertain" ones, where the policy's next-token entropy was highest), the runner-up
    token then greedy decoding to the end; the answer is the best of the greedy answer and those rollouts by the
    head's read-out (`score`, left out: the head's own) over each whole answer, with `prefer_finished` one
    that ended at EOS first. The prefix all of them share streams when the greedy answer is written; the
    rest arrives in one piece once they are ranked."""

    forks: int = 4
    chunk: int = 10
    fork_min_p: float = 0.1
    last_fork_at: int = 480
    prefer_finished: bool = True
    score: Readout | None = None
    place: Place = "spread"
    strategy: ClassVar[str] = "fork_rollouts"
    streams_tokens: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_int(self, "forks", 1, MAX_SAMPLES)
        check_int(self, "chunk", 1, MAX_CHUNK)
        check_float(self, "fork_min_p", 0.0, 1.0)
        check_int(self, "last_fork_at", self.chunk, 1 << 16)
        check_bool(self, "prefer_finished")
        check_readout(self)
        if self.place not in PLACES:
            raise SearchConfigError("place", f"place must be one of {', '.join(PLACES)}; got {self.place!r}")

    @property
    def max_live_branches(self) -> int:
        return self.forks


SearchConfig = PlainConfig | SlaConfig | BestOfNConfig | ForkRolloutsConfig | CardsConfig | TreeConfig | RsdConfig
