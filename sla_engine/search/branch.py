"""The search primitive: extend a branch by one chunk, reading its rewards and the tokens it could fork into.

A branch is a separate vLLM request whose prompt is its whole token path (chat prompt + committed tokens +
look-ahead), so siblings and successors share the prefix KV cache through vLLM's prefix caching. A chunk
request generates greedily and asks for one token more than the chunk keeps: that extra position carries the
reward of the prefix ending at the chunk's last token and the top next tokens at the chunk boundary
(readout.py), so neither needs another pass. Branch requests are never detokenized.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine


@dataclass(frozen=True)
class Chunk:
    """One extension of a branch."""

    tokens: list[int]  # the chunk (its fork token first, if it has one)
    rewards: list[float]  # rewards[i]: reward of the prefix ending at tokens[i]; none for a final EOS token
    next_tokens: list[int]  # the top next tokens after the chunk, best first; [] when finished
    finish_reason: str | None  # "stop" (EOS) or None; running out of budget is the caller's business
    generated: int  # tokens the engine generated for it (the look-ahead token included)
    prompt_tokens: int  # the request's prompt length
    cached_tokens: int  # of which served from the prefix cache


async def extend(
    engine: Engine, path: list[int], fork: int | None, size: int, width: int, request_id: str | None = None
) -> Chunk:
    """Extend the branch `path` by a chunk of `size` tokens: `fork` (if given) then greedy tokens.

    `width`: how many next tokens to read at the chunk boundary. Cancelling the call aborts the request.
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
    params = SamplingParams(
        max_tokens=to_generate + look_ahead, temperature=0.0, detokenize=False, output_kind=RequestOutputKind.FINAL_ONLY
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
        next_tokens = engine.reward.top_tokens(c.logprobs[to_generate], width)
    return Chunk(
        tokens, rewards, next_tokens, "stop" if ended else None, len(generated), len(prompt), out.num_cached_tokens or 0
    )
