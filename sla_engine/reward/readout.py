"""How the per-token reward leaves vLLM in the same forward pass (REFERENCE §6).

The reward model writes two reserved vocabulary columns: logits[R] = r + OFFSET, logits[Z] = OFFSET.
A request asks for the "logprobs" of exactly [R, Z] (`logprob_token_ids`), which vLLM takes from the raw
logits before any bias. A reward engine runs with `logprobs_mode="raw_logits"`, so those values are the
logits themselves and r = value[R] − value[Z] exactly, with no full-vocabulary log-softmax per step (in the
default raw-logprobs mode the same difference holds too: the softmax normaliser cancels). A logit bias of
−100 on both keeps them from ever being sampled.

Off-by-one: the logprobs that come with generated token i are computed from the hidden state after token
i − 1 (after the prompt for i = 0), so they carry the reward of the prefix *before* token i. The reward of
the prefix ending at token i is entry i + 1; for the last token one more position is needed (`Engine.generate_scored`
gets it with a one-token scoring request that the prefix cache makes cheap).
"""

from __future__ import annotations

from dataclasses import dataclass

from vllm import SamplingParams

OFFSET = -100.0
SUPPRESS = -100.0  # the most negative logit bias vLLM allows


@dataclass(frozen=True)
class RewardIds:
    reward: int  # R
    zero: int  # Z
    added_rows: int  # vocabulary rows the reward model adds (0 where the embedding has padded rows)

    @classmethod
    def for_vocab(cls, config_vocab: int, tokenizer_vocab: int) -> "RewardIds":
        """The last two rows of the vocabulary, adding two when the tokenizer uses every row."""
        added = 0 if config_vocab - tokenizer_vocab >= 2 else 2
        vocab = config_vocab + added
        return cls(reward=vocab - 2, zero=vocab - 1, added_rows=added)

    def apply(self, params: SamplingParams) -> SamplingParams:
        """Makes a request read the reward (and never sample R or Z); `params` is changed and returned."""
        if params.logprobs is not None:
            raise ValueError("top-k logprobs cannot be combined with the reward read-out in one batch")
        params.logprob_token_ids = [self.reward, self.zero]
        params.logit_bias = {**(params.logit_bias or {}), self.reward: SUPPRESS, self.zero: SUPPRESS}
        return params

    def rewards(self, logprobs) -> list[float]:
        """Per-position rewards from a completion's logprobs (one dict per generated token)."""
        return [lp[self.reward].logprob - lp[self.zero].logprob for lp in logprobs]
