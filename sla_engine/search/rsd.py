"""Reward-guided speculative decoding (REFERENCE §5) on two engines: the served model as the draft (it carries
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
import weakref
from typing import AsyncIterator

from vllm import SamplingParams

from sla_engine.engine import Engine
from sla_engine.search.branches import Commit, Search
from sla_engine.search.config import RsdConfig

STEP_END = "\n\n"
_step_end_ids: weakref.WeakKeyDictionary[Engine, tuple[int, ...]] = weakref.WeakKeyDictionary()


def step_end_ids(engine: Engine) -> tuple[int, ...]:
    """The token ids whose text contains a blank line: a step ends with the first of them. Decoding the
    vocabulary takes seconds, so the server computes this at start-up (off the event loop), once per engine;
    the target shares the draft's tokenizer (checked at start-up), so the draft's ids serve both."""
    if engine not in _step_end_ids:
        tok = engine.tokenizer
        texts = tok.batch_decode([[i] for i in range(len(tok))], skip_special_tokens=False)
        _step_end_ids[engine] = tuple(i for i, text in enumerate(texts) if STEP_END in text)
    return _step_end_ids[engine]


def check_pair(draft: Engine, target: Engine) -> None:
    """Speculative decoding hands token ids between the two engines: their tokenizers must be the same."""
    if target.tokenizer.get_vocab() != draft.tokenizer.get_vocab():
        raise ValueError(f"the target model {target.config.served_name} does not share the served model's "
                         f"tokenizer; speculative decoding needs the same token ids")


def step_score(rewards: list[float]) -> float:
    """sigmoid(mean reward) of a step; a step without rewards (an EOS alone) scores 1: nothing to rewrite."""
    if not rewards:
        return 1.0
    return 1.0 / (1.0 + math.exp(-sum(rewards) / len(rewards)))


class Rsd(Search):
    config: RsdConfig
    counters = ("steps_draft", "steps_target", "draft_tokens", "target_tokens")

    def __init__(self, draft: Engine, target: Engine, *args, **kwargs):
        if draft.reward is None:
            raise ValueError("the draft engine needs a reward head")
        super().__init__(draft, *args, **kwargs)
        self.draft, self.target = draft, target
        self.step_end_ids = list(step_end_ids(draft))
        self.tokens: list[int] = []
        self.steps: list[tuple[list[int], float, str]] = []  # (draft's step, its score, who wrote the commit)

    def _params(self) -> SamplingParams:
        return SamplingParams(
            max_tokens=min(self.config.max_step, self.max_tokens - len(self.tokens)), temperature=0.0,
            stop_token_ids=self.step_end_ids, detokenize=False,
        )

    async def commits(self) -> AsyncIterator[Commit]:
        """Committed steps in order. Closing the generator early aborts the step being written."""
        try:
            while True:
                path = self.prompt_ids + self.tokens
                step_id = f"{self.request_id}-s{self.branches.started}"
                [draft] = await self.branches.all_of([self.branches.start(
                    self.draft.generate_scored(path, self._params(), step_id))])
                if self.steps:  # the search's first request is the first draft step; later ones are branches
                    self.stats.branch(len(path), draft.num_cached_tokens)
                drafted = len(draft.token_ids) + 1  # + the one-token scoring request
                self.stats.counters["draft_tokens"] += drafted
                self.stats.tokens_generated += drafted
                score = step_score(draft.rewards)
                accepted = score >= self.config.threshold
                self.steps.append((draft.token_ids, score, "draft" if accepted else "target"))
                if accepted:
                    tokens, rewards, finish = draft.token_ids, draft.rewards, draft.finish_reason
                    self.stats.counters["steps_draft"] += 1
                else:
                    tokens, finish = await self._rewrite(path)
                    rewards = []  # the target has no reward head
                self.tokens += tokens
                self.stats.committed(tokens, rewards)
                ended = finish == "stop" and bool(tokens) and tokens[-1] in self.target.eos_token_ids | self.draft.eos_token_ids
                done = ended or len(self.tokens) >= self.max_tokens or not tokens
                self._report()  # before the yield: a consumer stops reading at the last commit
                yield Commit(tokens, ("stop" if ended else "length") if done else None)
                if done:
                    return
        finally:
            await self.branches.close()

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
        [(tokens, finish)] = await self.branches.all_of([self.branches.start(write())])
        self.stats.counters["steps_target"] += 1
        self.stats.counters["target_tokens"] += len(tokens)
        self.stats.tokens_generated += len(tokens)
        return tokens, finish

    def _report(self) -> None:
        c = self.stats.counters
        steps = c["steps_draft"] + c["steps_target"]
        c["target_share"] = c["steps_target"] / steps if steps else 0.0
        p_draft, p_target = self.draft.parameters, self.target.parameters
        emitted = self.stats.tokens_emitted
        c["compute_vs_target"] = (
            (p_draft * c["draft_tokens"] + p_target * c["target_tokens"]) / (p_target * emitted) if emitted else None
        )
