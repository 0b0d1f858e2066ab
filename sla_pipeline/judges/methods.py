"""Ways a local model can judge which of two answers to an instruction is better, behind one interface:
`await judge.prefer(case)` → a `Preference` whose `margin` is > 0 when the first answer is better.

- `pointwise` (G-Eval): each answer alone gets a 1–10 score, the probability-weighted mean over the score
  tokens (not the argmax); `margin` = the first's score − the second's.
- `reference`: the same with a reference answer in the prompt (MT-Bench's reference-guided grading), where
  the case has one; without one it is `pointwise`.
- `checklist` (RocketEval): a short yes/no checklist per instruction, written once by a (larger) local model
  and stored; each answer is graded item by item from P(yes) / (P(yes) + P(no)); score = the mean.
- `pairwise`: both answers in one prompt, asked in both orders; with m₁ = log P(A) − log P(B) when the first
  is shown as A and m₂ the same when it is shown as B, `margin` = (m₁ − m₂) / 2 (the order effect cancels) and
  `position_bias` = (m₁ + m₂) / 2 (how much the judge favours whatever is shown first).
- `classifier`: a sequence-classification reward model (ArmoRM / Skywork-Reward style) scores each answer.

The causal-LM judges read next-token log-probabilities of the few tokens they need from our vLLM engine
(`logprob_token_ids`, no sampling); the classifier runs in transformers.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Protocol

from vllm import SamplingParams

from sla_engine.engine import Engine

SYSTEM = "You are a careful, impartial judge of AI assistant answers."
SCORE = """Rate how well the response follows the user's instruction: helpfulness, correctness, relevance and \
level of detail.{reference}

[Instruction]
{instruction}

[Response]
{answer}

Answer with a single number from 1 (useless) to 10 (excellent)."""
ANSWER_KEY = "\nA reference answer is given; judge correctness against it.\n\n[Reference answer]\n{reference}"
PAIR = """Which response follows the user's instruction better? Consider helpfulness, correctness, relevance and \
level of detail. Ignore the order in which the responses are shown and their length.

[Instruction]
{instruction}

[Response A]
{a}

[Response B]
{b}

Answer with a single letter: A or B."""
ITEM = """[Instruction]
{instruction}

[Response]
{answer}

Does the response satisfy this requirement? {item}
Answer yes or no."""
WRITE_CHECKLIST = """Write a checklist of 3 to 5 short yes/no questions that a good answer to the instruction below \
must satisfy. One question per line, each starting with "- ".

[Instruction]
{instruction}"""


@dataclass(frozen=True)
class Case:
    instruction: str
    first: str
    second: str
    reference: str | None = None


@dataclass(frozen=True)
class Preference:
    margin: float  # > 0: the first answer is better; 0: no preference
    position_bias: float = 0.0  # pairwise: the judge's lean towards the answer shown first


class Judge(Protocol):
    name: str

    async def prefer(self, case: Case) -> Preference: ...


def chat(text: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def single_token(tokenizer, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"the judge's tokenizer splits {text!r} into {len(ids)} tokens")
    return ids[0]


class ScoreMemo:
    """Each distinct (instruction, answer, …) is scored once per judge: the sanity tier and `sla eval`'s pairs
    show the same answers again, and a score does not depend on what it is compared with."""

    def __init__(self):
        self.scores: dict[tuple, asyncio.Future] = {}

    def get(self, key: tuple, compute) -> asyncio.Future:
        """The (shared) future of `compute()`'s result for `key`; concurrent askers wait on the same one."""
        if key not in self.scores:
            self.scores[key] = asyncio.ensure_future(compute())
        return self.scores[key]


class TokenReader:
    """Log-probabilities of chosen next tokens after a chat prompt (and an optional answer prefix)."""

    def __init__(self, engine: Engine):
        if engine.reward is not None:
            raise ValueError("a judge runs on a plain engine (reward engines read other columns)")
        self.engine = engine

    async def logprobs(self, messages: list[dict], token_ids: list[int], prefix: list[int] = ()) -> list[float]:
        ids = self.engine.chat_prompt_ids(messages) + list(prefix)
        params = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=token_ids, detokenize=False)
        async for out in self.engine.generate(ids, params):
            pass
        step = out.outputs[0].logprobs[0]
        return [step[t].logprob if t in step else -math.inf for t in token_ids]


def expected_score(logprobs: dict[int, float]) -> float:
    """The probability-weighted mean of the scores, over the score values only (renormalised)."""
    top = max(logprobs.values())
    weights = {score: math.exp(lp - top) for score, lp in logprobs.items()}
    return sum(score * w for score, w in weights.items()) / sum(weights.values())


class PointwiseJudge:
    """`pointwise`, or with `use_reference` the reference-guided `reference` method."""

    def __init__(self, engine: Engine, use_reference: bool = False):
        self.reader, self.use_reference = TokenReader(engine), use_reference
        self.name = "reference" if use_reference else "pointwise"
        tok = engine.tokenizer
        self.digits = [single_token(tok, str(k)) for k in range(1, 10)]
        ten = tok.encode("10", add_special_tokens=False)
        # "10" is "1" then "0" for most tokenizers: P(10) = P("1") · P("0" | "1"), P(1) = P("1") · (1 − that)
        self.zero = ten[1] if ten[:1] == [self.digits[0]] and len(ten) == 2 else None
        self.ten = ten[0] if len(ten) == 1 else None
        self.memo = ScoreMemo()

    async def score(self, instruction: str, answer: str, reference: str | None) -> float:
        reference = reference if self.use_reference else None
        key = (instruction, answer, reference)
        return await self.memo.get(key, lambda: self.compute(*key))

    async def compute(self, instruction: str, answer: str, reference: str | None) -> float:
        ref = ANSWER_KEY.format(reference=reference) if reference else ""
        messages = chat(SCORE.format(instruction=instruction, answer=answer, reference=ref))
        wanted = self.digits + ([self.ten] if self.ten is not None else [])
        lps = dict(zip(range(1, len(wanted) + 1), await self.reader.logprobs(messages, wanted)))
        if self.zero is not None:
            [p_zero] = await self.reader.logprobs(messages, [self.zero], prefix=[self.digits[0]])
            p_zero = min(math.exp(p_zero), 1.0)
            lps[10] = lps[1] + math.log(max(p_zero, 1e-300))
            lps[1] = lps[1] + math.log(max(1.0 - p_zero, 1e-300))
        return expected_score(lps)

    async def prefer(self, case: Case) -> Preference:
        a, b = await asyncio.gather(self.score(case.instruction, case.first, case.reference),
                                    self.score(case.instruction, case.second, case.reference))
        return Preference(a - b)


class PairwiseJudge:
    name = "pairwise"

    def __init__(self, engine: Engine):
        self.reader = TokenReader(engine)
        self.letters = [single_token(engine.tokenizer, "A"), single_token(engine.tokenizer, "B")]

    async def margin(self, instruction: str, a: str, b: str) -> float:
        lp_a, lp_b = await self.reader.logprobs(chat(PAIR.format(instruction=instruction, a=a, b=b)), self.letters)
        return lp_a - lp_b

    async def prefer(self, case: Case) -> Preference:
        m1, m2 = await asyncio.gather(self.margin(case.instruction, case.first, case.second),
                                      self.margin(case.instruction, case.second, case.first))
        return Preference((m1 - m2) / 2, (m1 + m2) / 2)
