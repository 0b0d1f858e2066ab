"""The search primitive: extend a branch by one chunk, reading its rewards and the tokens it could fork into.

A branch is a separate vLLM request whose prompt is its whole token path (chat prompt + committed tokens +
look-ahead), so siblings and successors share the prefix KV cache through vLLM's prefix caching. A chunk
request generates greedily and asks for one token more than the chunk keeps: that extra position carries the
reward of the prefix ending at the chunk's last token and the top next tokens at the chunk boundary
(readout.py), so neither needs another pass. Branch requests are never detokenized.
"""

from __future__ import annotations

import uuid
from contextlib import aclosing
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine


@dataclass(frozen=True)
class Sampling:
    """How a sampled chunk draws its tokens (a greedy chunk has none)."""

    temperature: float
    seed: int
    top_k: int = 0  # 0: the whole vocabulary


@dataclass(frozen=True)
class Chunk:
    """One extension of a branch."""

    tokens: list[int]  # the chunk (its fork token first, if it has one)
    rewards: list[float]  # rewards[i]: reward of the prefix ending at tokens[i]; none for a final EOS token
    next_tokens: list[int]  # the top next tokens after the chunk, best first (at least one); [] when finished
    finish_reason: str | None  # "stop" (EOS) or None; running out of budget is the caller's business
    generated: int  # tokens the engine generated for it (the look-ahead token included)
    prompt_tokens: int  # the request's prompt length
    cached_tokens: int  # of which served from the prefix cache
    entropy: float | None = None  # mean next-token entropy of the positions it generated (its uncertainty)

    def finish(self, length: int, budget: int) -> str | None:
        """Why a branch that is `length` tokens long with this chunk grows no more: "stop" (EOS), "length"
        (it reached `budget`, the request's max_tokens, or the context's end, where no position follows)."""
        if self.finish_reason:
            return self.finish_reason
        return "length" if length >= budget or not self.next_tokens else None


async def extend(
    engine: Engine, path: list[int], fork: int | None, size: int, width: int, request_id: str | None = None,
    sampling: Sampling | None = None, fork_min_p: float = 0.0,
) -> Chunk:
    """Extend the branch `path` by a chunk of `size` tokens: `fork` (if given) then greedy tokens (sampled
    ones with `sampling`).

    `width`: how many next tokens to read at the chunk boundary, leaving out those less than `fork_min_p`
    times as likely as the most likely one. Cancelling the call aborts the request.
    """
    if engine.reward is None:
        raise RuntimeError("a search needs a reward engine")
    if size < 1:
        raise ValueError(f"a chunk has at least one token, got {size}")
    if fork is not None and fork in engine.eos_token_ids:
        return Chunk([fork], [], [], "stop", 0, 0, 0)
    prompt = path + ([fork] if fork is not None else [])
    to_generate = size - (fork is not None)
    look_ahead = len(prompt) + to_generate < engine.max_model_len
    if to_generate + look_ahead == 0:  # a one-token chunk at the very end of the context: nothing to run
        return Chunk([fork], [], [], None, 0, 0, 0)
    draw = dict(temperature=sampling.temperature, seed=sampling.seed, top_k=sampling.top_k) if sampling else dict(temperature=0.0)
    params = SamplingParams(
        max_tokens=to_generate + look_ahead, detokenize=False, output_kind=RequestOutputKind.FINAL_ONLY, **draw
    )
    out = None
    async for out in engine.generate(prompt, params, request_id or f"branch-{uuid.uuid4().hex}"):
        pass
    c = out.outputs[0]
    generated = list(c.token_ids)
    # entry i: reward of the prefix before generated[i] (ending at `fork` for i = 0, or at the path's end)
    before = engine.reward.rewards(c.logprobs)
    tokens = ([fork] if fork is not None else []) + generated[:to_generate]
    rewards = (before if fork is not None else before[1:])[: len(tokens)]
    ended = c.finish_reason == "stop" and len(generated) <= to_generate  # EOS inside the chunk
    next_tokens = []
    if not ended and len(generated) > to_generate:
        next_tokens = engine.reward.top_tokens(c.logprobs[to_generate], width, fork_min_p)
    entropies = engine.reward.entropies(c.logprobs[:to_generate])
    return Chunk(
        tokens, rewards, next_tokens, "stop" if ended else None, len(generated), len(prompt), out.num_cached_tokens or 0,
        sum(entropies) / len(entropies) if entropies else None,
    )


@dataclass(frozen=True)
class Position:
    """What one generated token carries out of the engine."""

    token: int
    reward_before: float  # reward of the prefix before this token (ending at the previous one)
    entropy: float  # entropy of the next-token distribution this token was drawn from


async def positions(
    engine: Engine, path: list[int], max_tokens: int, sampling: Sampling, request_id: str,
    on_prompt: Callable[[int, int], None] | None = None,
) -> AsyncIterator[Position]:
    """A sampled continuation of `path`, position by position as the engine produces them. Closing the
    generator early aborts the request (searches that cut a branch at a point they only see while it runs).
    `on_prompt(prompt tokens, of which cached)` is called once, with the first output."""
    params = SamplingParams(
        max_tokens=max_tokens, temperature=sampling.temperature, seed=sampling.seed, top_k=sampling.top_k,
        detokenize=False, output_kind=RequestOutputKind.DELTA,
    )
    async with aclosing(engine.generate(path, params, request_id)) as outputs:
        async for out in outputs:
            if on_prompt:
                on_prompt(len(path), out.num_cached_tokens or 0)
                on_prompt = None
            c = out.outputs[0]
            for token, reward, entropy in zip(c.token_ids, engine.reward.rewards(c.logprobs), engine.reward.entropies(c.logprobs)):
                yield Position(token, reward, entropy)
