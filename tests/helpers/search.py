"""What the search tests share: the tolerance against the fp32 reference, a mean, greedy decoding on an
engine, and crafted best-of-N samples with the best of them by the server's ranking."""

from __future__ import annotations

from vllm import SamplingParams

from sla_engine.search.best_of_n import Candidate
from sla_engine.search.ranking import by_score, ranked

TOL = 1e-3


def mean(xs):
    return sum(xs) / len(xs)


def greedy(runner, engine, prompt, n):
    async def go():
        async for out in engine.generate(prompt, SamplingParams(max_tokens=n, temperature=0.0)):
            pass
        return list(out.outputs[0].token_ids)

    return runner.run(go())


def sample(index, rewards, finish="stop"):
    return Candidate(list(range(len(rewards))), list(rewards), finish, index=index)


def best(samples: list[Candidate], prefer_finished: bool = False) -> Candidate:
    return ranked(samples, by_score("mean", prefer_finished))[0]
