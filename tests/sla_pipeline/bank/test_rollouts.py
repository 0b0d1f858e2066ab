"""Prefix rollouts in the sample bank (sla_pipeline/bank/rollouts.py): which prefixes a sibling pair gives, what
a rerun still draws, the seed rule, the grow job over them, and on a tiny model that rollouts continue the
prefix, are graded whole and are seeded."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import EngineConfig
from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.grow import rollout_job
from sla_pipeline.bank.plan import GrowPlan
from sla_pipeline.bank.problems import FORKS, ROLLOUTS
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.bank.rollouts import Prefix, RolloutSettings, continue_prefix, drawn, missing, sibling_prefixes
from sla_pipeline.data.sampling import SamplingSettings
from sla_pipeline.data.sources import Item, user
from tests.helpers.engine_thread import EngineThread
from tests.helpers.tiny_models import make_tiny_model

TRUNK = tuple(range(100))


def trunk(item: str, correct: bool, split: str = "heldout") -> BankRecord:
    return BankRecord(f"{item}#trunk", "trunk", split, item, None, "x", TRUNK, "length", 7.0, None, correct)


def fork(item: str, at: int, correct: bool, length: int = 100, split: str = "heldout") -> BankRecord:
    ids = TRUNK[:at] + (500,) + tuple(range(600, 600 + length - at - 1))
    return BankRecord(f"{item}#fork@{at}", "fork", split, item, None, "x", ids, "stop", 7.0, None, correct,
                      parent=f"{item}#trunk", fork_at=at, fork_token=500)


def test_each_sibling_pair_gives_both_answers_cut_past_the_fork_each_prefix_once():
    records = [trunk("a", False), fork("a", 10, True), fork("a", 50, True), fork("a", 70, False),  # same outcome
               trunk("b", True), fork("b", 20, False, length=35)]  # the fork ends (EOS) inside the look-ahead
    prefixes = sibling_prefixes(records, 30)
    assert sorted(p.key for p in prefixes["a"]) == [("a#fork@10", 40), ("a#fork@50", 80), ("a#trunk", 40),
                                                   ("a#trunk", 80)]  # the trunk once per fork position
    b_trunk, b_fork = sorted(prefixes["b"], key=lambda p: p.answer.kind, reverse=True)
    assert b_trunk.tokens == 50 and b_fork.tokens == 35 and b_fork.read_whole and not b_trunk.read_whole
    have = Counter({("a#trunk", 40): 4, ("a#fork@10", 40): 2})
    assert sorted(p.key for p in missing(prefixes["a"], have, 4)) == [("a#fork@10", 40), ("a#fork@50", 80),
                                                                     ("a#trunk", 80)]
    assert missing(prefixes["b"], Counter(), 4) == [b_trunk]  # what ended inside is never continued


def test_the_seed_depends_on_the_answer_its_outcome_the_lookahead_and_the_first_index():
    a, b = Prefix(fork("a", 10, True), 40, 30), Prefix(trunk("a", False), 40, 30)
    assert a.seed() == Prefix(a.answer, 40, 30).seed() and a.seed() != a.seed(4)
    assert len({a.seed(), b.seed(), Prefix(a.answer, 70, 60).seed()}) == 3


def test_a_rollout_is_a_bank_record_that_keeps_its_parents_prefix():
    r = BankRecord.graded("a#trunk@40#r0", "rollout", "heldout", "a", 9, "so 7", list(TRUNK[:40]) + [1], "stop",
                          7.0, parent="a#trunk", fork_at=40)
    assert r.correct and BankRecord.from_json(r.to_json()) == r and drawn([r]) == Counter({("a#trunk", 40): 1})
    with pytest.raises(ValueError, match="fork_token exactly on forks"):
        BankRecord("x", "rollout", "train", "a", 9, "so", (1, 2), "stop", 7.0, None, False, parent="p", fork_at=1,
                   fork_token=3)
    with pytest.raises(ValueError, match="outside"):
        BankRecord("x", "rollout", "train", "a", 9, "so", (1, 2), "stop", 7.0, None, False, parent="p", fork_at=3)


def test_the_grow_job_lists_only_problems_whose_prefixes_lack_rollouts(tmp_path):
    items = [Item(i, "gsm", "heldout", (user("q"),), 7.0) for i in ("a", "b", "c")]
    Collection(tmp_path / FORKS).append([trunk("a", False), fork("a", 10, True), trunk("b", True),
                                         fork("b", 20, False), trunk("c", True), fork("c", 20, True),
                                         trunk("d", True, split="train"), fork("d", 20, False, split="train")])
    plan = GrowPlan(tmp_path, "m", rollouts=RolloutSettings(per_prefix=2))
    assert [it.id for it in rollout_job("validation rollouts", plan, items).items] == ["a", "b"]  # c: no pair
    done = [BankRecord.graded(f"b#{side}@{at}#r{i}", "rollout", "heldout", "b", 1, "x", [1] * (at + 1), "stop", 7.0,
                              parent=f"b#{side}", fork_at=at) for side, at in (("trunk", 50), ("fork@20", 50))
            for i in range(2)]
    Collection(tmp_path / ROLLOUTS).append(done)
    job = rollout_job("validation rollouts", plan, items)
    assert [it.id for it in job.todo()] == ["a"] and job.collection.folder == tmp_path / ROLLOUTS


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory):
    folder = make_tiny_model("qwen2", tmp_path_factory.mktemp("tiny") / "model", seed=3)
    runner = EngineThread(EngineConfig(model_path=str(folder), served_name="tiny", max_model_len=4096,
                                       kv_cache_gib=0.25, warmup=False))
    yield runner
    runner.close()


@pytest.mark.engine
def test_rollouts_follow_the_prefix_are_graded_whole_and_seeded(tiny_engine):
    engine = tiny_engine.engine
    ids = tuple(engine.tokenizer.encode("The answer is 4", add_special_tokens=False))
    parent = BankRecord("p#trunk", "trunk", "train", "p", None, "x", ids + (11, 12), "stop", 4.0, None, False)
    item = Item("p", "gsm", "train", (user("2+2?"),), 4.0)
    sampling = SamplingSettings(temperature=0.7, top_k=20, max_tokens=40)
    prefix = Prefix(parent, len(ids), 30)
    got = tiny_engine.run(continue_prefix(engine, item, prefix, n=3, start=2, sampling=sampling))
    again = tiny_engine.run(continue_prefix(engine, item, prefix, n=3, start=2, sampling=sampling))
    assert [r.id for r in got] == [f"p#trunk@{len(ids)}#r{i}" for i in (2, 3, 4)] and got == again  # seeded
    for r in got:
        assert r.kind == "rollout" and r.parent == "p#trunk" and r.fork_at == len(ids) and r.split == "train"
        assert r.token_ids[:len(ids)] == ids and len(ids) < r.tokens <= 40 and r.seed == prefix.seed(2)
        assert r.text.startswith("The answer is 4") and isinstance(r.correct, bool)


@pytest.mark.engine
def test_seeded_requests_whose_prefill_is_split_do_not_take_the_cpu_engine_down(tiny_engine):
    """Three seeded 1,500-token prompts at once overrun a step's 2,048-token budget, so some prefills are split
    (sla_engine/cpu_seeds.py); without the fix vLLM's rewind of their CPU generators kills the engine core."""
    engine = tiny_engine.engine

    async def one(seed: int) -> int:
        params = SamplingParams(temperature=0.8, max_tokens=8, seed=seed, ignore_eos=True,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        async for out in engine.generate([100 + (seed + i) % 5000 for i in range(1500)], params):
            pass
        return len(out.outputs[0].token_ids)

    async def burst() -> list[int]:
        return list(await asyncio.gather(*(one(seed) for seed in (1, 2, 3))))

    assert tiny_engine.run(burst()) == [8, 8, 8]
    assert tiny_engine.run(burst()) == [8, 8, 8]  # and the engine is still there
