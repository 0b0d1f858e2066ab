"""Fork rollouts: preference pairs between *sibling* answers, the choice SLA actually makes (`sla data --stages forks`).

The `gsm` pairs compare two independent answers to a problem. SLA never does: at a chunk boundary it compares
continuations that share everything before the boundary and differ from one token on. So for a GSM problem:

    trunk     the policy's greedy answer, with the top-2 next tokens at every position
    forks     at up to `per_problem` chunk boundaries (every `chunk` tokens, before `max_fork_at`) where the
              runner-up token is at least `min_ratio` times as likely as the greedy one — the boundaries where
              SLA with fork_min_p = min_ratio would fork — the trunk up to the boundary, then the runner-up
              token, then greedy to the end: the sibling SLA would weigh against the trunk
    pairs     where exactly one of trunk and fork gets the final number right (both must finish and give a
              number): the right one is chosen. Source `gsm_fork`; the label keeps the boundary and ratio.

One line per problem in `forks/gsm.jsonl` (trunk and forks together), written when the problem is done: a
rerun skips the problems on disk.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine
from sla_engine.search.fork_rollouts import fork_points as search_fork_points
from sla_pipeline.data import gsm
from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.pairs import Pair
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.data.sources import Item


@dataclass(frozen=True)
class ForkSettings:
    chunk: int = 10  # SLA's chunk: forks happen every `chunk` generated tokens
    per_problem: int = 4  # forks rolled out per problem, spread evenly over the eligible boundaries
    min_ratio: float = 0.1  # p(runner-up) / p(greedy) at least this (the fork_min_p the pairs are for)
    max_fork_at: int = 200  # boundaries after this many tokens are not used (training cuts responses at 256)
    max_tokens: int = 512  # the whole answer's budget, trunk and forks alike (the eval's max_tokens)
    concurrency: int = 16  # problems in flight (each with up to `per_problem` forks at once)

    def __post_init__(self) -> None:
        if self.chunk < 1 or self.per_problem < 1 or self.concurrency < 1:
            raise ValueError("chunk, per_problem and concurrency must be positive")
        if not 0.0 < self.min_ratio <= 1.0:
            raise ValueError(f"min_ratio must be in (0, 1], got {self.min_ratio}")
        if not self.chunk <= self.max_fork_at < self.max_tokens - 1:
            raise ValueError("max_fork_at must be at least chunk and leave a fork at least one token to generate")


@dataclass(frozen=True)
class ForkPoint:
    at: int  # tokens of the trunk kept before the fork token
    token: int  # the runner-up token at that position
    log_ratio: float  # log p(token) - log p(greedy token)


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str | None
    tokens: int
    token_ids: tuple[int, ...] = field(default=(), compare=False)  # kept by the sample bank, not forks/gsm.jsonl

    def to_json(self) -> dict:
        return {"text": self.text, "finish_reason": self.finish_reason, "tokens": self.tokens}

    @classmethod
    def from_json(cls, r: dict) -> Answer:
        return cls(r["text"], r.get("finish_reason"), int(r["tokens"]))


@dataclass(frozen=True)
class ForkedProblem:
    item: str
    trunk: Answer
    forks: tuple[tuple[ForkPoint, Answer], ...]

    def to_json(self) -> dict:
        return {"item": self.item, "trunk": self.trunk.to_json(),
                "forks": [{**p.__dict__, **a.to_json()} for p, a in self.forks]}

    @classmethod
    def from_json(cls, r: dict) -> ForkedProblem:
        return cls(r["item"], Answer.from_json(r["trunk"]),
                   tuple((ForkPoint(int(f["at"]), int(f["token"]), float(f["log_ratio"])), Answer.from_json(f))
                         for f in r["forks"]))


def fork_points(greedy: list[int], top: list[dict[int, float]], settings: ForkSettings) -> list[ForkPoint]:
    """Where SLA would fork the greedy answer `greedy` (top[i]: token → log-prob at position i), at most
    `per_problem` of them, evenly spread over the eligible boundaries: the rule the `fork_rollouts` search
    forks by (sla_engine/search/fork_rollouts.py), with each fork token's log-ratio to the greedy token."""
    runner_ups, log_ratios = [], {}
    for at, chosen in enumerate(greedy):
        others = sorted(((lp, t) for t, lp in top[at].items() if t != chosen), reverse=True)
        ratio = others[0][0] - top[at][chosen] if others else -math.inf
        runner_ups.append(others[0][1] if ratio >= math.log(settings.min_ratio) else None)
        log_ratios[at] = ratio
    points = search_fork_points(runner_ups, settings.chunk, settings.max_fork_at, settings.per_problem)
    return [ForkPoint(at, token, log_ratios[at]) for at, token in points]


async def fork_problem(engine: Engine, item: Item, settings: ForkSettings) -> ForkedProblem:
    prompt = engine.chat_prompt_ids(item.messages)
    greedy = SamplingParams(temperature=0.0, max_tokens=settings.max_tokens, logprobs=2, detokenize=False,
                            output_kind=RequestOutputKind.FINAL_ONLY)
    async for out in engine.generate(prompt, greedy):
        pass
    trunk = out.outputs[0]
    ids = list(trunk.token_ids)
    top = [{t: lp.logprob for t, lp in position.items()} for position in trunk.logprobs]
    points = fork_points(ids, top, settings)

    def answer(token_ids: list[int], finish: str | None) -> Answer:
        return Answer(engine.tokenizer.decode(token_ids, skip_special_tokens=True), finish, len(token_ids),
                      tuple(token_ids))

    async def roll(p: ForkPoint) -> Answer:
        head = ids[: p.at] + [p.token]
        if p.token in engine.eos_token_ids:  # the runner-up ends the answer here, as an SLA branch would
            return answer(head, "stop")
        params = SamplingParams(temperature=0.0, max_tokens=settings.max_tokens - len(head), detokenize=False,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        async for rest in engine.generate(prompt + head, params):
            pass
        return answer(head + list(rest.outputs[0].token_ids), rest.outputs[0].finish_reason)

    rolled = await asyncio.gather(*(roll(p) for p in points))
    return ForkedProblem(item.id, answer(ids, trunk.finish_reason), tuple(zip(points, rolled)))


def read_forks(path: Path) -> dict[str, ForkedProblem]:
    return {f.item: f for f in read_jsonl(path, ForkedProblem.from_json)}


async def fork_items(engine: Engine, items: list[Item], settings: ForkSettings, out: Path) -> dict[str, ForkedProblem]:
    """Trunk and forks for every item, from `out` where already there, else from the engine."""
    done = read_forks(out)

    async def one(item: Item) -> list[dict]:
        done[item.id] = await fork_problem(engine, item, settings)
        return [done[item.id].to_json()]

    await run_resumable([it for it in items if it.id not in done], one, out, total=len(items),
                        concurrency=settings.concurrency, desc="forks", unit="problem")
    return {it.id: done[it.id] for it in items}


def _right(a: Answer, answer: float) -> bool | None:
    """Whether a finished answer gives the right number; None when it cannot be judged."""
    if a.finish_reason != "stop" or gsm.extract_answer(a.text) is None:
        return None
    return gsm.is_correct(a.text, answer)


def fork_outcomes(item: Item, problem: ForkedProblem) -> Counter:
    """What the forks of one problem did: "trunk right|wrong|unjudged", "right->wrong" (a right trunk's fork
    got it wrong), "wrong->right", "right->right", "wrong->wrong", and "unjudged" forks."""
    def name(right: bool | None) -> str:
        return "unjudged" if right is None else "right" if right else "wrong"

    trunk = _right(problem.trunk, item.answer)
    counts = Counter({f"trunk {name(trunk)}": 1})
    for _, fork in problem.forks:
        after = _right(fork, item.answer)
        counts["unjudged" if trunk is None or after is None else f"{name(trunk)}->{name(after)}"] += 1
    return counts


def fork_pairs(item: Item, problem: ForkedProblem) -> list[Pair]:
    """One pair per fork whose answer is right where the trunk's is wrong, or the other way round."""
    trunk_right = _right(problem.trunk, item.answer)
    pairs = []
    for point, fork in problem.forks:
        fork_right = _right(fork, item.answer)
        if trunk_right is None or fork_right is None or trunk_right == fork_right:
            continue
        chosen, rejected = (problem.trunk, fork) if trunk_right else (fork, problem.trunk)
        label = {"method": "fork_rollout", "answer": item.answer, "fork_at": point.at,
                 "log_ratio": round(point.log_ratio, 4), "chosen": "trunk" if trunk_right else "fork"}
        pairs.append(Pair(f"{item.id}@{point.at}", "gsm_fork", item.id, item.split, item.messages, chosen.text,
                          rejected.text, label))
    return pairs
