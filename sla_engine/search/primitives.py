"""The search primitives, each one engine request: extend a branch by a chunk (`extend`), stream a sampled
branch position by position (`positions`), and run a request to its end with every token's reward
(`complete`).

A branch is a separate vLLM request whose prompt is its whole token path (chat prompt + committed tokens +
look-ahead), so siblings and successors share the prefix KV cache through vLLM's prefix caching. A chunk
request asks for one token more than the chunk keeps: that extra position carries the reward of the prefix
ending at the chunk's last token and the top next tokens at the chunk boundary (reward/columns.py), so
neither needs another pass. Branch requests are never detokenized.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine
from sla_engine.search.scored import Chunk


@dataclass(frozen=True)
class Draw:
    """How a sampled request draws its tokens (a greedy one has none)."""

    temperature: float
    seed: int
    top_k: int = 0  # 0: the whole vocabulary

    def params(self) -> dict:
        return dict(temperature=self.temperature, seed=self.seed, top_k=self.top_k)


def reward_engine(engine: Engine) -> Engine:
    if engine.reward is None:
        raise RuntimeError("a search needs a reward engine")
    return engine


async def extend(
    engine: Engine, path: list[int], fork: int | None, size: int, width: int, request_id: str | None = None,
    draw: Draw | None = None, fork_min_p: float = 0.0,
) -> Chunk:
    """Extend the branch `path` by a chunk of `size` tokens: `fork` (if given) then greedy tokens (sampled
    ones with `draw`).

    `width`: how many next tokens to read at the chunk boundary, leaving out those less than `fork_min_p`
    times as likely as the most likely one. Cancelling the call aborts the request.
    """
    reward = reward_engine(engine).reward
    if size < 1:
        raise ValueError(f"a chunk has at least one token, got {size}")
    if fork is not None and fork in engine.eos_token_ids:
        return Chunk([fork], [], "stop")
    prompt = path + ([fork] if fork is not None else [])
    to_generate = size - (fork is not None)
    look_ahead = len(prompt) + to_generate < engine.max_model_len
    if to_generate + look_ahead == 0:  # a one-token chunk at the very end of the context: nothing to run
        return Chunk([fork], [], None)
    sampling = draw.params() if draw else {"temperature": 0.0}
    params = SamplingParams(max_tokens=to_generate + look_ahead, detokenize=False,
                            output_kind=RequestOutputKind.FINAL_ONLY, **sampling)
    out = None
    async for out in engine.generate(prompt, params, request_id or f"branch-{uuid.uuid4().hex}"):
        pass
    c = out.outputs[0]
    generated = list(c.token_ids)
    # entry i: reward of the prefix before generated[i] (ending at `fork` for i = 0, or at the path's end)
    before = reward.rewards(c.logprobs)
    tokens = ([fork] if fork is not None else []) + generated[:to_generate]
    rewards = (before if fork is not None else before[1:])[: len(tokens)]
    ended = c.finish_reason == "stop" and len(generated) <= to_generate  # EOS inside the chunk
    next_tokens = []
    if not ended and len(generated) > to_generate:
        next_tokens = reward.top_tokens(c.logprobs[to_generate], width, fork_min_p)
    entropies = reward.entropies(c.logprobs[:to_generate])
    return Chunk(tokens, rewards, "stop" if ended else None, next_tokens, len(generated), len(prompt),
                 out.num_cached_tokens or 0, sum(entropies) / len(entropies) if entropies else None)


@dataclass(frozen=True)
class Position:
    """What one generated token carries out of the engine."""

    token: int
    reward_before: float  # reward of the prefix before this token (ending at the previous one)
    entropy: float  # entropy of the next-token distribution this token was drawn from
    rivals: tuple[int, ...] = ()  # with `width`: the top tokens that could have taken its place, best first


async def positions(
    engine: Engine, path: list[int], max_tokens: int, draw: Draw | None, request_id: str,
    on_prompt: Callable[[int, int], None] | None = None, width: int = 0, fork_min_p: float = 0.0,
) -> AsyncIterator[Position]:
    """A continuation of `path` (sampled with `draw`, greedy without), position by position as the engine
    produces them, each with its top-`width` rivals (min_p-filtered, reward/columns.py) when `width` > 0.
    Closing the generator early aborts the request (searches that cut a branch at a point they only see while
    it runs). `on_prompt(prompt tokens, of which cached)` is called once, with the first output."""
    reward = reward_engine(engine).reward
    params = SamplingParams(max_tokens=max_tokens, detokenize=False, output_kind=RequestOutputKind.DELTA,
                            **(draw.params() if draw else {"temperature": 0.0}))
    async with aclosing(engine.generate(path, params, request_id)) as outputs:
        async for out in outputs:
            if on_prompt:
                on_prompt(len(path), out.num_cached_tokens or 0)
                on_prompt = None
            c = out.outputs[0]
            for token, r, entropy, lp in zip(c.token_ids, reward.rewards(c.logprobs), reward.entropies(c.logprobs),
                                             c.logprobs):
                rivals = tuple(reward.top_tokens(lp, width, fork_min_p)) if width else ()
                yield Position(token, r, entropy, rivals)


async def write(
    engine: Engine, path: list[int], budget: int, draw: Draw | None, request_id: str,
    cut: Callable[[list[int], Position], bool] | None = None, on_prompt: Callable[[int, int], None] | None = None,
    width: int = 0, fork_min_p: float = 0.0,
) -> tuple[Chunk, list[Position]]:
    """Up to `budget` tokens continuing `path`, read position by position, with one position of look-ahead
    (where the context allows) so that the last token's reward is read too. `cut(tokens so far, position)` may
    end it at a position, which then only gives the reward of the prefix before it. Returns the chunk (its
    tokens, the reward of the prefix ending at each — a final EOS token has none —, "stop" if it ended at EOS,
    the positions the engine generated) and the positions of its tokens (their rivals, with `width`)."""
    look_ahead = len(path) + budget < engine.max_model_len
    tokens, before, kept, ended = [], [], [], False
    async with aclosing(positions(engine, path, budget + look_ahead, draw, request_id, on_prompt, width,
                                  fork_min_p)) as stream:
        async for p in stream:
            before.append(p.reward_before)
            if len(tokens) == budget or (cut is not None and cut(tokens, p)):
                break  # the look-ahead position, or the cut: only its reward is kept
            tokens.append(p.token)
            kept.append(p)
            if p.token in engine.eos_token_ids:
                ended = True
                break
    rewards = before[1: len(tokens) + 1 - ended] if tokens else []  # before[i]: the prefix ending at token i-1
    return Chunk(tokens, rewards, "stop" if ended else None, generated=len(before)), kept


async def complete(engine: Engine, path: list[int], params: SamplingParams, request_id: str | None = None) -> Chunk:
    """Run one request to its end (`params` decide where: max_tokens, stop tokens) and return every
    generated token with the reward of the prefix ending at it — a final EOS token included, whose reward one
    more one-token request over the whole path reads (its prefill served by the prefix cache but for the last
    partial block). `finish_reason` is "stop" when the request ended at EOS."""
    reward = reward_engine(engine).reward
    params = params.clone()
    params.output_kind = RequestOutputKind.DELTA
    params.detokenize = False
    ids: list[int] = []
    before: list[float] = []  # before[i]: reward of the prefix before token i
    cached = 0
    async for out in engine.generate(path, params, request_id):
        c = out.outputs[0]
        ids += c.token_ids
        before += reward.rewards(c.logprobs)
        cached = out.num_cached_tokens or cached
    ended = bool(ids) and ids[-1] in engine.eos_token_ids
    chunk = Chunk(ids, [], "stop" if ended else None, generated=len(ids), prompt_tokens=len(path), cached_tokens=cached)
    if ids:
        last = SamplingParams(max_tokens=1, temperature=0.0, detokenize=False)
        async for out in engine.generate(path + ids, last):
            pass
        chunk.rewards = before[1:] + reward.rewards(out.outputs[0].logprobs)[:1]
        chunk.generated += 1
    return chunk
