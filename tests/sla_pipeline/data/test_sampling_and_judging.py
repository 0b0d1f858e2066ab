"""Sampling and judging through a real vLLM engine (a tiny random model: the mechanics, not the quality)."""

from __future__ import annotations

import math

import pytest
from vllm import SamplingParams

from sla_engine.engine import EngineConfig
from sla_pipeline.data.forks import ForkSettings, fork_items
from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.judge import judge_all
from sla_pipeline.data.sampling import SamplingSettings, sample_items
from sla_pipeline.data.sources import Item
from sla_pipeline.judges.methods import Case, PairwiseJudge
from tests.helpers.engine_thread import EngineThread
from tests.helpers.tiny_models import make_tiny_model

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    folder = make_tiny_model("qwen2", tmp_path_factory.mktemp("tiny-data"))
    r = EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", max_model_len=1024, kv_cache_gib=0.5,
                                  warmup=False))
    yield r
    r.close()


def items(n: int) -> list[Item]:
    return [Item(f"alpaca/{i}", "alpaca", "train", ({"role": "user", "content": f"Say something about {i}."},))
            for i in range(n)]


def test_sampling_resumes_without_redoing_finished_prompts(runner, tmp_path):
    out = tmp_path / "samples.jsonl"
    settings = SamplingSettings(samples=3, max_tokens=12, concurrency=2)
    first = runner.run(sample_items(runner.engine, items(3), settings, out))
    assert sorted(len(v) for v in first.values()) == [3, 3, 3]
    assert all(s.tokens == 12 and s.finish_reason == "length" for v in first.values() for s in v)
    lines = out.read_text()
    again = runner.run(sample_items(runner.engine, items(3), settings, out))  # all on disk: nothing generated
    assert out.read_text() == lines and again == first
    with open(out, "a") as fh:  # a crash mid-write of a later item leaves half a line
        fh.write('{"item": "alpaca/3", "ind')
    more = runner.run(sample_items(runner.engine, items(4), settings, out))
    assert out.read_text().startswith(lines) and len(more["alpaca/3"]) == 3
    assert {k: v for k, v in more.items() if k != "alpaca/3"} == first
    # the seed is per item: the same item sampled afresh gives the same answers
    fresh = runner.run(sample_items(runner.engine, items(1), settings, tmp_path / "fresh.jsonl"))
    assert [s.text for s in fresh["alpaca/0"]] == [s.text for s in first["alpaca/0"]]


def test_raising_samples_per_prompt_draws_only_the_missing_ones(runner, tmp_path):
    out = tmp_path / "samples.jsonl"
    short = SamplingSettings(samples=2, max_tokens=8, concurrency=2)
    first = runner.run(sample_items(runner.engine, items(2), short, out))
    lines = out.read_text()
    more = runner.run(sample_items(runner.engine, items(2), SamplingSettings(samples=5, max_tokens=8), out))
    assert out.read_text().startswith(lines) and len(out.read_text().splitlines()) == 2 * 5
    for key, old in first.items():
        assert more[key][:2] == old and [s.index for s in more[key]] == [0, 1, 2, 3, 4]


def test_judge_reads_both_orders_and_resumes(runner, tmp_path):
    judge = PairwiseJudge(runner.engine)
    case = Case("Name a colour.", "Blue.", "I like trains.")
    p, swapped = runner.run(judge.prefer(case)), runner.run(judge.prefer(Case(case.instruction, case.second,
                                                                              case.first)))
    assert math.isfinite(p.margin) and math.isfinite(p.position_bias)
    assert swapped.margin == pytest.approx(-p.margin) and swapped.position_bias == pytest.approx(p.position_bias)
    out = tmp_path / "verdicts.jsonl"
    tasks = [(f"k{i}", Case("Name a colour.", "Blue.", f"Answer {i}.")) for i in range(3)]
    got = runner.run(judge_all(judge, tasks, out, concurrency=2))
    assert len(list(read_jsonl(out, dict))) == 3
    assert runner.run(judge_all(judge, tasks, out)) == got
    assert len(list(read_jsonl(out, dict))) == 3  # nothing asked twice


def test_fork_points_are_the_runner_up_token_at_that_position_and_runs_resume(runner, tmp_path):
    engine = runner.engine
    items = [Item(f"gsm/t{i}-s0-0", "gsm", "train", ({"role": "user", "content": f"What is {i} + 1?"},),
                  answer=i + 1.0) for i in range(3)]
    settings = ForkSettings(chunk=4, per_problem=3, min_ratio=0.01, max_fork_at=20, max_tokens=32,
                            concurrency=2)
    out = tmp_path / "forks.jsonl"
    got = runner.run(fork_items(engine, items, settings, out))

    async def top2(ids: list[int]) -> dict[int, float]:
        params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=2, detokenize=False)
        async for o in engine.generate(ids, params):
            pass
        return {t: lp.logprob for t, lp in o.outputs[0].logprobs[0].items()}

    async def greedy(ids: list[int]) -> list[int]:
        params = SamplingParams(temperature=0.0, max_tokens=32, detokenize=False)
        async for o in engine.generate(ids, params):
            pass
        return list(o.outputs[0].token_ids)

    checked = 0
    for it in items:
        prompt = engine.chat_prompt_ids(it.messages)
        trunk = runner.run(greedy(prompt))
        p = got[it.id]
        assert p.trunk.tokens == len(trunk) and p.trunk.text == engine.tokenizer.decode(trunk, skip_special_tokens=True)
        for point, fork in p.forks:
            assert point.at % 4 == 0 and 4 <= point.at <= 20 and math.log(0.01) <= point.log_ratio <= 0
            # prefill of the trunk up to the fork: the greedy token is the trunk's, the other is the fork's
            top = runner.run(top2(prompt + trunk[: point.at]))
            assert max(top, key=top.get) == trunk[point.at] and point.token in top
            assert top[point.token] - top[trunk[point.at]] == pytest.approx(point.log_ratio, abs=1e-3)
            rest = runner.run(greedy(prompt + trunk[: point.at] + [point.token]))
            assert fork.text == engine.tokenizer.decode(trunk[: point.at] + [point.token] + rest[: 32 - point.at - 1],
                                                        skip_special_tokens=True)
            checked += 1
    assert checked >= 3  # a random tiny model's next-token distribution is flat: most boundaries qualify
    lines = out.read_text()
    assert runner.run(fork_items(engine, items, settings, out)) == got and out.read_text() == lines
