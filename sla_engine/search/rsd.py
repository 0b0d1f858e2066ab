"""Reward-guided speculative decoding (docs/background.md#the-other-searches) on two engines: the served model as the
draft (it carries
the reward head) and a larger target model with the same tokenizer.

The answer grows by steps. A step ends at the first token whose text contains a blank line ("\\n\\n"), at
EOS, or after `max_step` tokens. The draft writes a step greedily; its score is sigmoid(mean token reward over
the step) — the last token's reward from one more one-token request over the path, whose prefix the cache
serves. A step scoring ≥ `threshold` is committed; otherwise the target writes the step from the same prefix,
greedily, and its step is committed instead (the draft's prefix cache then pays one prefill for it).
`compute_vs_target` estimates the search's decode compute against the target writing every token alone:
(P_draft · draft tokens + P_target · target tokens) / (P_target · tokens emitted), P the parameter counts.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

from vllm import SamplingParams

from sla_engine.engine import Engine
from sla_engine.search.base import Search
from sla_engine.search.config import RsdConfig
from sla_engine.search.primitives import complete
from sla_engine.search.scored import ScoredTokens

STEP_END = "\n\n"


def step_end_ids(engine: Engine) -> list[int]:
    """The token ids whose text contains a blank line: a step ends with the first of them. The target shares
    the draft's tokenizer (checked at start-up, engine/startup.py), so the draft's ids serve both."""
    return list(engine.ids_containing(STEP_END))


def step_score(step: ScoredTokens) -> float:
    """sigmoid(mean reward) of a step; a step without rewards (an EOS alone) scores 1: nothing to rewrite."""
    if not step.rewards:
        return 1.0
    return 1.0 / (1.0 + math.exp(-step.mean_reward))


class Rsd(Search):
    config: RsdConfig
    counters = ("steps_draft", "steps_target", "draft_tokens", "target_tokens")

    def __init__(self, draft: Engine, target: Engine, *args, **kwargs):
        if draft.reward is None:
            raise ValueError("the draft engine needs a reward head")
        super().__init__(draft, *args, **kwargs)
        self.draft, self.target = draft, target
        self.step_end_ids = step_end_ids(draft)
        self.tokens: list[int] = []
        self.steps: list[tuple[list[int], float, str]] = []  # (draft's step, its score, who wrote the commit)

    def _params(self) -> SamplingParams:
        return SamplingParams(
            max_tokens=min(self.config.max_step, self.max_tokens - len(self.tokens)), temperature=0.0,
            stop_token_ids=self.step_end_ids, detokenize=False,
        )

    async def _commits(self) -> AsyncIterator[ScoredTokens]:
        """Committed steps in order."""
        while True:
            path = self.prompt_ids + self.tokens
            step_id = f"{self.request_id}-s{self.branches.started}"
            draft = await self.branches.one(complete(self.draft, path, self._params(), step_id))
            if self.steps:  # the search's first request is the first draft step; later ones are branches
                self.stats.branch(len(path), draft.cached_tokens)
            drafted = len(draft.tokens) + 1  # + the one-token scoring request
            self.stats.counters["draft_tokens"] += drafted
            self.stats.tokens_generated += drafted
            score = step_score(draft)
            accepted = score >= self.config.threshold
            self.steps.append((draft.tokens, score, "draft" if accepted else "target"))
            if accepted:
                step = ScoredTokens(draft.tokens, draft.rewards)
                ended = draft.finish_reason == "stop"
                self.stats.counters["steps_draft"] += 1
            else:  # the target has no reward head
                tokens, finish = await self._rewrite(path)
                step = ScoredTokens(tokens, [])
                eos = self.target.eos_token_ids | self.draft.eos_token_ids
                ended = finish == "stop" and bool(tokens) and tokens[-1] in eos
            self.tokens += step.tokens
            if ended or len(self.tokens) >= self.max_tokens or not step.tokens:
                step.finish_reason = "stop" if ended else "length"
            yield step

    async def _rewrite(self, path: list[int]) -> tuple[list[int], str | None]:
        async def write() -> tuple[list[int], str | None]:
            tokens, finish, cached = [], None, 0
            async for out in self.target.generate(path, self._params(), f"{self.request_id}-t{self.branches.started}"):
                tokens, finish = list(out.outputs[0].token_ids), out.outputs[0].finish_reason
                cached = out.num_cached_tokens or cached
            self.stats.branch(len(path), cached)
            return tokens, finish

        self.stats.branches_forked += 1
        self.stats.branches_aborted += 1  # the draft's step, thrown away
        tokens, finish = await self.branches.one(write())
        self.stats.counters["steps_target"] += 1
        self.stats.counters["target_tokens"] += len(tokens)
        self.stats.tokens_generated += len(tokens)
        return tokens, finish

    def _committed(self) -> None:
        c = self.stats.counters
        steps = c["steps_draft"] + c["steps_target"]
        c["target_share"] = c["steps_target"] / steps if steps else 0.0
        p_draft, p_target = self.draft.parameters, self.target.parameters
        emitted = self.stats.tokens_emitted
        c["compute_vs_target"] = (
            (p_draft * c["draft_tokens"] + p_target * c["target_tokens"]) / (p_target * emitted) if emitted else None
        )
