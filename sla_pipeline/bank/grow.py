"""`sla bank grow`: draws the policy's labelled answers of one domain into the bank, resumable and in slices.

Three collections per domain (gsm, mbpp, ifeval), each on train-side problems and on the validation problems:

    <domain>-samples   `samples` answers per problem at temperature 0.7, top-k 20 (best-of-N's draw), max 512
                       tokens
    <domain>-forks     the greedy answer (trunk) and greedy rollouts from forks at SLA's chunk boundaries where
                       the runner-up token is plausible (data/forks.py): siblings that share a prefix, SLA's choice
    <domain>-rollouts  sampled continuations of the sibling pairs' answers cut `lookahead` tokens past the fork
                       (rollouts.py): the prefix-success rate where SLA compares them; on the pairs the forks
                       collection held when the run started

Problems (problems.py): each domain's train side and its validation problems, never a test problem. Every
answer is graded by its domain's rule as it is drawn (MBPP's in the sandbox, off the event loop).
Work goes round robin in slices of `slice` problems per job (validation forks, validation samples, train
samples, train forks, validation rollouts, train rollouts, or the `jobs` a plan names, in its order), each
slice sealed into a compressed part and counted in the manifest, so a stop at any point leaves a balanced
bank. Train forks go first to the problems whose samples (as the turn starts) have both outcomes, last to
those whose samples agree. A rerun skips what is there. SIGTERM and SIGINT end it cleanly: the engine is
shut down, the open slice stays open for the next run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine
from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.manifest import write_manifest
from sla_pipeline.bank.plan import GrowPlan
from sla_pipeline.bank.problems import collections, train_items, validation_items
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.bank.rollouts import draw_rollouts, drawn, missing, sibling_prefixes
from sla_pipeline.data.forks import ForkSettings, fork_problem
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.data.sampling import SamplingSettings, item_seed
from sla_pipeline.data.sources import Item
from sla_pipeline.engines import running_engine

log = logging.getLogger(__name__)


async def draw_samples(engine: Engine, item: Item, n: int, settings: SamplingSettings) -> list[BankRecord]:
    params = SamplingParams(n=n, temperature=settings.temperature, top_k=settings.top_k,
                            max_tokens=settings.max_tokens, seed=item_seed(item.id, settings.seed),
                            output_kind=RequestOutputKind.FINAL_ONLY)
    async for result in engine.generate(engine.chat_prompt_ids(item.messages), params):
        pass
    return await asyncio.to_thread(lambda: [
        BankRecord.answered(item, f"{item.id}#s{c.index}", "sample", params.seed, c.text, list(c.token_ids),
                            c.finish_reason) for c in result.outputs])


async def draw_forks(engine: Engine, item: Item, settings: ForkSettings) -> list[BankRecord]:
    problem = await fork_problem(engine, item, settings)
    trunk_id = f"{item.id}#trunk"

    def graded() -> list[BankRecord]:
        t = problem.trunk
        records = [BankRecord.answered(item, trunk_id, "trunk", None, t.text, list(t.token_ids), t.finish_reason)]
        for point, a in problem.forks:
            records.append(BankRecord.answered(
                item, f"{item.id}#fork@{point.at}", "fork", None, a.text, list(a.token_ids), a.finish_reason,
                parent=trunk_id, fork_at=point.at, fork_token=point.token, log_ratio=round(point.log_ratio, 4)))
        return records

    return await asyncio.to_thread(graded)


@dataclass
class Job:
    name: str
    collection: Collection
    items: list[Item]
    draw: Callable[[Engine, Item], Awaitable[list[BankRecord]]]
    concurrency: int
    done_items: set[str] = field(default_factory=set)
    order: Callable[[list[Item]], list[Item]] | None = None  # re-applied at every turn

    def todo(self) -> list[Item]:
        items = self.order(self.items) if self.order else self.items
        return [it for it in items if it.id not in self.done_items]


def rollout_job(name: str, plan: GrowPlan, items: list[Item]) -> Job:
    """Rollouts for the sibling pairs among `items`' forks, only the problems still lacking some."""
    _, forks, rollouts_name = collections(plan.domain)
    rollouts, s = Collection(plan.bank / rollouts_name), plan.sampling
    split = {"train" if it.split == "train" else "heldout" for it in items}
    prefixes = sibling_prefixes((r for r in Collection(plan.bank / forks).records() if r.split in split),
                                plan.rollouts.lookahead)
    have = drawn(rollouts.records())
    todo = [it for it in items if missing(prefixes.get(it.id, []), have, plan.rollouts.per_prefix)]
    return Job(name, rollouts, todo, lambda e, it: draw_rollouts(e, it, prefixes[it.id], have, plan.rollouts, s),
               plan.rollouts.concurrency)


def fork_order(items: list[Item], samples: Collection) -> list[Item]:
    """`items` in the order a fork most likely yields a sibling pair (a trunk and fork that differ in outcome),
    each group in list order: first the problems whose bank samples have both outcomes, then those not sampled
    yet, last those whose samples all agree. On the first 615 train fork problems (2026-12-05): 0.52 pairs a
    problem with both outcomes (250), 0.28 overall, 0.13 where all eight samples were wrong (358)."""
    outcomes: dict[str, set[bool]] = {}
    for r in samples.records():
        if r.kind == "sample":
            outcomes.setdefault(r.item, set()).add(r.correct)
    tier = {2: 0, 0: 1, 1: 2}  # by how many outcomes the samples show
    return sorted(items, key=lambda it: tier[len(outcomes.get(it.id, ()))])


def jobs(plan: GrowPlan) -> list[Job]:
    samples_name, forks_name, _ = collections(plan.domain)
    samples, forks = Collection(plan.bank / samples_name), Collection(plan.bank / forks_name)
    train = train_items(max(plan.train_sample_problems, plan.train_fork_problems), plan.domain)
    validation = validation_items(plan.validation_problems, plan.domain)
    s, f = plan.sampling, plan.forks

    def drawn_once(job: Job, kind: str) -> Job:
        """A job over problems drawn once each: those with a record of `kind` are done."""
        present = {r.item for r in job.collection.records() if r.kind == kind}
        job.done_items = {it.id for it in job.items if it.id in present}
        return job

    by_name = {  # built only when named: each reads its collection
        "validation-forks": lambda: drawn_once(Job("validation forks", forks, validation,
                                                   lambda e, it: draw_forks(e, it, f), f.concurrency), "trunk"),
        "validation-samples": lambda: drawn_once(Job(
            "validation samples", samples, validation, lambda e, it: draw_samples(e, it, plan.validation_samples, s),
            s.concurrency), "sample"),
        "train-samples": lambda: drawn_once(Job("train samples", samples, train[: plan.train_sample_problems],
                                                lambda e, it: draw_samples(e, it, s.samples, s), s.concurrency),
                                            "sample"),
        "train-forks": lambda: drawn_once(Job("train forks", forks, train[: plan.train_fork_problems],
                                              lambda e, it: draw_forks(e, it, f), f.concurrency,
                                              order=lambda items: fork_order(items, samples)), "trunk"),
        "validation-rollouts": lambda: rollout_job("validation rollouts", plan, validation),
        "train-rollouts": lambda: rollout_job("train rollouts", plan, train[: plan.train_fork_problems]),
    }
    return [by_name[name]() for name in plan.jobs]


async def grow(plan: GrowPlan, engine: Engine) -> None:
    """Round robin over the jobs, a slice each, until every job is done; seals and counts after each slice."""
    listed = jobs(plan)
    write_manifest(plan)
    drew = True
    while drew:  # a turn: each job's next slice, its order read as the turn reaches it
        drew = False
        for job in listed:
            todo = job.todo()[: plan.slice]
            if not todo:
                continue
            drew = True

            async def one(item: Item, job: Job = job) -> list[dict]:
                records = await job.draw(engine, item)
                job.done_items.add(item.id)
                return [r.to_json() for r in records]

            await run_resumable(todo, one, job.collection.open_path, total=len(job.done_items) + len(todo),
                                concurrency=job.concurrency, desc=job.name, unit="problem")
            job.collection.seal()
            counts = write_manifest(plan)
            log.info("%s: %s", job.name, json.dumps(counts))


def run(plan: GrowPlan) -> None:
    async def main() -> None:
        task, loop = asyncio.current_task(), asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # cancel the run, so that the engine below is shut down
            loop.add_signal_handler(sig, task.cancel)
        # 64 answers of ~700 tokens at once; a small KV cache leaves the machine's memory to other work
        async with running_engine(plan.model, max_model_len=2048, kv_cache_gib=1.25) as engine:
            await grow(plan, engine)

    plan.bank.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        log.info("stopped by a signal; rerun to go on")
