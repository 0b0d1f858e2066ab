"""How the per-token reward, and the top next tokens a search forks into, leave vLLM in the same forward pass
(docs/background.md#vllm-032).

The reward model writes a block of reserved vocabulary columns at the end of the vocabulary:
- logits[R] = r + OFFSET, logits[Z] = OFFSET: the reward of the prefix ending at the current position;
- logits[H] = h + OFFSET: h, the entropy (nats) of the model's next-token distribution over the tokenizer's ids
  (temperature 1), which segment-based searches (CARDS, tree sampling) use as uncertainty;
- logits[F_j] = FORK_OFFSET − id_j for j < FORK_COLUMNS: the ids of the j-th most likely next tokens (over the
  tokenizer's ids), in order, so a search forks a branch into its top-n next tokens without a top-k logprobs
  request (which vLLM 0.32 cannot mix with `logprob_token_ids` in one batch) and without an extra pass;
- logits[P_j] = log p(id_j) + OFFSET: that token's log-probability (temperature 1), so a search can leave out
  fork tokens the model itself finds implausible (`top_tokens`' `min_p`).
A request asks for the "logprobs" of exactly these columns (`logprob_token_ids`), which vLLM takes from the
raw logits before any bias. A reward engine runs with `logprobs_mode="raw_logits"`, so the values are the
logits themselves: r = value[R] − value[Z], h = value[H] − value[Z] and log p(id_j) = value[P_j] − value[Z]
exactly, and the fork ids are exact integers in fp32 (< 2^24).
A logit bias of −100 on every reserved column keeps them from ever being sampled (their logits are very
negative already).

Off-by-one: the logprobs that come with generated token i are computed from the hidden state after token
i − 1 (after the prompt for i = 0), so they carry the reward of the prefix *before* token i and the top tokens
that could have taken token i's place. The reward of the prefix ending at token i is entry i + 1; for the last
token one more position is needed: a search asks for one token more than it keeps (`search/primitives.py`,
`extend` and `write`), a plain scoring call sends one more one-token request (`complete`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vllm import SamplingParams

OFFSET = -100.0
FORK_OFFSET = -1000.0
FORK_COLUMNS = 8  # the widest fork a search may ask for
RESERVED_COLUMNS = 3 + 2 * FORK_COLUMNS
SUPPRESS = -100.0  # the most negative logit bias vLLM allows


@dataclass(frozen=True)
class RewardIds:
    reward: int  # R
    zero: int  # Z
    entropy: int  # H
    fork: tuple[int, ...]  # F_0 .. F_{FORK_COLUMNS-1}
    fork_logprob: tuple[int, ...]  # P_0 .. P_{FORK_COLUMNS-1}
    token_vocab: int  # ids below this are real tokens (what the top-n fork ranks)
    added_rows: int  # vocabulary rows the reward model adds (0 where the embedding has enough padded rows)

    @classmethod
    def for_vocab(cls, config_vocab: int, tokenizer_vocab: int) -> RewardIds:
        """The last RESERVED_COLUMNS rows of the vocabulary, adding rows when the tokenizer leaves too few."""
        added = 0 if config_vocab - tokenizer_vocab >= RESERVED_COLUMNS else RESERVED_COLUMNS
        first = config_vocab + added - RESERVED_COLUMNS
        forks = first + 3
        return cls(
            reward=first, zero=first + 1, entropy=first + 2, fork=tuple(range(forks, forks + FORK_COLUMNS)),
            fork_logprob=tuple(range(forks + FORK_COLUMNS, first + RESERVED_COLUMNS)),
            token_vocab=tokenizer_vocab, added_rows=added,
        )

    @classmethod
    def from_dict(cls, fields: dict) -> RewardIds:
        """Inverse of dataclasses.asdict (the form that travels in the model config)."""
        return cls(**{**fields, "fork": tuple(fields["fork"]), "fork_logprob": tuple(fields["fork_logprob"])})

    @property
    def columns(self) -> list[int]:
        return [self.reward, self.zero, self.entropy, *self.fork, *self.fork_logprob]

    def apply(self, params: SamplingParams, read_rewards: bool = True) -> SamplingParams:
        """Makes a request never sample the reserved columns and, with `read_rewards`, read them; `params` is
        changed and returned. A request that reads nothing (plain decoding) pays for none of the per-request
        column reading: no logprob entries are gathered or built for it."""
        if params.logprobs is not None:
            raise ValueError("top-k logprobs cannot be combined with reading the reward columns in one batch")
        if read_rewards:
            params.logprob_token_ids = self.columns
        params.logit_bias = {**(params.logit_bias or {}), **{c: SUPPRESS for c in self.columns}}
        return params

    def rewards(self, logprobs) -> list[float]:
        """Per-position rewards from a completion's logprobs (one dict per generated token)."""
        return [lp[self.reward].logprob - lp[self.zero].logprob for lp in logprobs]

    def entropies(self, logprobs) -> list[float]:
        """Per position, the entropy of the next-token distribution that position was sampled from."""
        return [lp[self.entropy].logprob - lp[self.zero].logprob for lp in logprobs]

    def top_tokens(self, position_logprobs: dict, n: int, min_p: float = 0.0) -> list[int]:
        """The n most likely next-token ids at one position, best first, without those less than `min_p` times
        as likely as the first (vLLM's min_p rule; the first is always kept)."""
        if not 1 <= n <= FORK_COLUMNS:
            raise ValueError(f"a fork has 1..{FORK_COLUMNS} children, got {n}")
        ids = [round(FORK_OFFSET - position_logprobs[c].logprob) for c in self.fork[:n]]
        if min_p <= 0.0:
            return ids
        zero = position_logprobs[self.zero].logprob
        logps = [position_logprobs[c].logprob - zero for c in self.fork_logprob[:n]]
        floor = logps[0] + math.log(min_p)
        return [t for t, lp in zip(ids, logps) if lp >= floor]
