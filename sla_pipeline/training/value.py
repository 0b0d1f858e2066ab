"""`sla train --loss value`: a value head trained on the sample bank (value_data.py says on what).

The head's output r_t at an answer position is trained toward the success rate through that prefix with a
binary cross-entropy on σ(r_t); the saved head declares its read-out, by default "last" (a search scores a path
by the output at its last token, the log-odds that the answer will end right), and carries no calibration: its
unit already means something. After each epoch the head is scored under that read-out on the validation problems
(held-out templates, never the test set): sibling pairs as SLA(2, 10, 2) sees them (`lookahead` tokens past the
fork) and best-of-N's candidate pairs; the epoch with the best accuracy on `keep_by`'s choice (default the
siblings) is the one saved.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sla_engine.reward import RewardChannel, RewardHead
from sla_pipeline.bank.pairs import AnswerPair, candidate_pairs, sibling_pairs
from sla_pipeline.bank.read import first_problems, prompt_ids, read_bank
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.training.choices import choice_accuracy, keep_trunk, reach, trunk_share
from sla_pipeline.training.config import TrainConfig
from sla_pipeline.training.features import FeatureCache
from sla_pipeline.training.optim import cosine_with_warmup, initial_channel
from sla_pipeline.training.value_data import SIBLING_VIEWS, ValueExample, value_examples

log = logging.getLogger(__name__)


def batch_rewards(channel: RewardChannel, cache: FeatureCache,
                  examples: list[ValueExample]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rewards [B, P] at every example's kept positions, their labels and the mask of real positions."""
    feats = [cache.get(e.response.key).float() for e in examples]
    width = max(f.shape[1] for f in feats)
    x = torch.zeros(feats[0].shape[0], len(examples), width, feats[0].shape[2])
    labels, mask = torch.zeros(len(examples), width), torch.zeros(len(examples), width)
    for i, (f, e) in enumerate(zip(feats, examples)):
        x[:, i, : f.shape[1]] = f
        labels[i, : f.shape[1]] = torch.tensor(e.labels)
        mask[i, : f.shape[1]] = 1
    return channel(list(x[:-1]), x[-1]), labels, mask


def value_loss(rewards: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(rewards, labels, weight=mask, reduction="sum") / mask.sum().clamp(min=1)


def consistency_term(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Temporal-difference consistency (TCRM, arXiv 2604.22981): the output at each kept position is pulled
    toward the value at the answer's next kept position, held fixed: BCE(r_t, σ(r_next)). Its minimum over r_t
    is at r_t = r_next, so the term asks a prefix's value to be what the next prefix's value expects."""
    return value_loss(rewards[:, :-1], torch.sigmoid(rewards[:, 1:]).detach(), mask[:, :-1] * mask[:, 1:])


# one fork-aligned comparison: (right answer, index into its kept positions, wrong answer, index)
SiblingView = tuple[ValueExample, int, ValueExample, int]


def sibling_views(examples: list[ValueExample], views: Iterable[int]) -> list[SiblingView]:
    """Per sibling pair among `examples`' answers and per view v, the position v tokens past the fork (the fork
    token counts) in both answers, where both keep it."""
    by_id = {e.record.id: e for e in examples}
    found = []
    for p in sibling_pairs(e.record for e in examples):
        right, wrong = by_id[p.right.id], by_id[p.wrong.id]
        for v in sorted(views):
            at = p.parting + v - 1
            if at in right.response.positions and at in wrong.response.positions:
                found.append((right, right.response.positions.index(at), wrong, wrong.response.positions.index(at)))
    return found


def pair_term(channel: RewardChannel, cache: FeatureCache, batch: list[SiblingView]) -> torch.Tensor:
    """Bradley–Terry on the two siblings' outputs at the same position past their fork: −log σ(r_right − r_wrong)."""
    right, _, _ = batch_rewards(channel, cache, [b[0] for b in batch])
    wrong, _, _ = batch_rewards(channel, cache, [b[2] for b in batch])
    rows = torch.arange(len(batch))
    diff = right[rows, [b[1] for b in batch]] - wrong[rows, [b[3] for b in batch]]
    return -F.logsigmoid(diff).mean()


def candidate_views(examples: list[ValueExample]) -> list[tuple[ValueExample, ValueExample]]:
    """Best-of-N's candidate pairs among `examples`' answers (a right and a wrong answer of one problem, from its
    greedy answer and samples) as (right, wrong) examples."""
    by_id = {e.record.id: e for e in examples}
    return [(by_id[p.right.id], by_id[p.wrong.id]) for p in candidate_pairs(e.record for e in examples)
            if p.right.id in by_id and p.wrong.id in by_id]


def candidate_term(channel: RewardChannel, cache: FeatureCache, batch: list[tuple[ValueExample, ValueExample]],
                   readout: str) -> torch.Tensor:
    """Bradley–Terry on two whole answers of one problem as best-of-N reads them (`readout`: the output at the
    last scored position, or the mean over the kept ones): −log σ(score_right − score_wrong)."""
    def scores(examples: list[ValueExample]) -> torch.Tensor:
        rewards, _, mask = batch_rewards(channel, cache, examples)
        return read_whole(rewards, mask, readout)

    return -F.logsigmoid(scores([b[0] for b in batch]) - scores([b[1] for b in batch])).mean()


def read_whole(rewards: torch.Tensor, mask: torch.Tensor, readout: str) -> torch.Tensor:
    """Each row's score as a search reads a whole answer: the output at its last kept position (an answer keeps
    its last scored one), or the mean over its kept positions."""
    if readout == "mean":
        return (rewards * mask).sum(1) / mask.sum(1)
    return rewards[torch.arange(len(rewards)), mask.sum(1).long() - 1]


@torch.no_grad()
def evaluate(channel: RewardChannel, cache: FeatureCache, examples: list[ValueExample],
             choices: dict[str, list[AnswerPair]], lookahead: int, limit: int, readout: str = "last",
             batch: int = 32) -> dict:
    """Held-out loss (at the positions kept of the answers the choices read), and the choices (`siblings` read
    `lookahead` tokens past the fork, with how often the trunk is kept; `candidates` whole) of a search reading a
    path by `readout`: the value at its last token seen, or the mean over its kept positions seen."""
    values: dict[str, dict[int, float]] = {}
    loss = weight = 0.0
    for i in range(0, len(examples), batch):
        part = examples[i: i + batch]
        r, labels, mask = batch_rewards(channel, cache, part)
        loss += value_loss(r, labels, mask).item() * mask.sum().item()
        weight += mask.sum().item()
        for e, row in zip(part, r):
            values[e.record.id] = dict(zip(e.response.positions, row.tolist()))

    def score(answer: BankRecord, seen: int) -> float:
        kept = torch.tensor([[v for p, v in values[answer.id].items() if p < seen]])
        return read_whole(kept, torch.ones_like(kept), readout).item()

    def scored(pairs: dict[str, list[AnswerPair]]) -> dict:
        return {"siblings": {"lookahead": lookahead, **choice_accuracy(pairs["siblings"], score, lookahead, limit),
                             "trunk_chosen": trunk_share(pairs["siblings"], score, lookahead, limit)},
                "candidates": choice_accuracy(pairs["candidates"], score, None, limit)}

    domains = sorted({p.right.domain for pairs in choices.values() for p in pairs})
    by_domain = {d: scored({k: [p for p in pairs if p.right.domain == d] for k, pairs in choices.items()})
                 for d in domains} if len(domains) > 1 else {}
    return {"heldout_loss": loss / max(weight, 1.0), **scored(choices), "by_domain": by_domain}


def mixed(records: list[BankRecord]) -> list[BankRecord]:
    """The answers of problems that have both a right and a wrong one."""
    outcomes: dict[str, set[bool]] = {}
    for r in records:
        outcomes.setdefault(r.item, set()).add(r.correct)
    return [r for r in records if len(outcomes[r.item]) == 2]


def with_siblings(records: list[BankRecord]) -> list[BankRecord]:
    """The answers of problems with a sibling pair (a trunk and a fork whose outcomes differ)."""
    items = {p.item for p in sibling_pairs(records)}
    return [r for r in records if r.item in items]


TRAIN_PROBLEMS = {"mixed": mixed, "all": list, "siblings": with_siblings}  # TrainConfig.problems


def train_on_bank(model_path: Path, base_model: str, bank: Path, out: Path, config: TrainConfig, cache_dir: Path,
                  init: Path | None = None) -> dict:
    """`sla train --loss value --bank BANK`: the bank's train answers against its validation answers. By
    default only problems with both a right and a wrong answer train (`config.problems`): they carry the contrast
    a search needs within a problem, and the backbone pass over every answer (~100-300 tok/s here) is the cost.
    `config.rollouts` says how the bank's rollouts are used: what each use adds is measured in
    docs/reward-head.md."""
    from transformers import AutoTokenizer

    records = read_bank(bank, config.rollouts != "none", config.domains)
    prompts = prompt_ids(AutoTokenizer.from_pretrained(model_path), records)
    train = TRAIN_PROBLEMS[config.problems]([r for r in records if r.split == "train"])
    if config.max_problems is not None:
        train = first_problems(train, config.max_problems)
    report = train_value(model_path, base_model, train, [r for r in records if r.split == "heldout"], prompts, out,
                         config, cache_dir, init, train_rollouts=config.rollouts == "all")
    report["bank"] = str(bank)  # the problems and rollouts used are in report["config"]
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def train_value(model_path: Path, base_model: str, train: list[BankRecord], heldout: list[BankRecord],
                prompts: dict[str, list[int]], out: Path, config: TrainConfig, cache_dir: Path,
                init: Path | None = None, backbone=None, train_rollouts: bool = True) -> dict:
    """Trains a value head on `train`, keeps the epoch that makes `heldout`'s `config.keep_by` choice best, and
    writes it with report.json into `out`; returns the report. `prompts[item]`: the chat prompt's token ids.
    Without `train_rollouts` the rollouts in `train` only label the prefixes they continue."""
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    if not train or not heldout:
        raise ValueError(f"need train and validation answers, got {len(train)} and {len(heldout)}")
    limit, lookahead = config.max_response_tokens, config.lookahead or 30
    views = {*SIBLING_VIEWS, lookahead}
    choices = {"siblings": sibling_pairs(heldout),
               "candidates": candidate_pairs(heldout) if config.validate_candidates else []}
    if not choices[config.keep_by]:
        raise ValueError(f"keep_by {config.keep_by} needs validation {config.keep_by} with different outcomes")
    train_ex = value_examples(train, prompts, config.stride, limit, views, rollout_examples=train_rollouts)
    # validation answers only as far as the choices read them: a third of the backbone pass over all of them
    read = reach([(choices["siblings"], lookahead), (choices["candidates"], None)], limit)
    held_ex = value_examples(heldout, prompts, config.stride, limit, views, {i: seen for i, (_, seen) in read.items()})
    cache = FeatureCache(cache_dir)
    if backbone is not None:
        cache.fill(backbone, [e.response for e in train_ex + held_ex])
    cache.complete(model_path, [e.response for e in train_ex + held_ex])
    features_s = time.perf_counter() - t0

    channel = initial_channel(model_path, config, init)
    optimizer = torch.optim.AdamW(channel.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = math.ceil(len(train_ex) / config.batch_size) * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(steps, config.warmup))
    before = evaluate(channel, cache, held_ex, choices, lookahead, limit, config.readout)
    history = {"steps": [], "epochs": [{"epoch": 0, **before}]}
    best = (history["epochs"][0][config.keep_by]["accuracy"] or 0.0, 0, copy.deepcopy(channel.state_dict()))
    rng = random.Random(config.seed)
    pairs = sibling_views(train_ex, SIBLING_VIEWS) if config.pair_weight else []
    if config.pair_weight and not pairs:
        raise ValueError("pair_weight needs train siblings with different outcomes (train forks in the bank)")
    candidates = candidate_views(train_ex) if config.candidate_weight else []
    if config.candidate_weight and not candidates:
        raise ValueError("candidate_weight needs train problems with a right and a wrong sample or greedy answer")
    for epoch in range(1, config.epochs + 1):
        order = train_ex[:]
        rng.shuffle(order)
        for i in tqdm(range(0, len(order), config.batch_size), desc=f"epoch {epoch}/{config.epochs}", unit="step"):
            rewards, labels, mask = batch_rewards(channel, cache, order[i: i + config.batch_size])
            loss = value_loss(rewards, labels, mask)
            step = {"step": len(history["steps"]) + 1, "epoch": epoch, "value_loss": loss.item()}
            if config.consistency_weight:
                term = consistency_term(rewards, mask)
                loss = loss + config.consistency_weight * term
                step["consistency_loss"] = term.item()
            if pairs:
                term = pair_term(channel, cache, rng.sample(pairs, min(config.batch_size, len(pairs))))
                loss = loss + config.pair_weight * term
                step["pair_loss"] = term.item()
            if candidates:
                term = candidate_term(channel, cache, rng.sample(candidates, min(config.batch_size, len(candidates))),
                                      config.readout)
                loss = loss + config.candidate_weight * term
                step["candidate_loss"] = term.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            history["steps"].append({**step, "loss": loss.item()})
        e = {"epoch": epoch, **evaluate(channel, cache, held_ex, choices, lookahead, limit, config.readout)}
        history["epochs"].append(e)
        log.info("epoch %d: held-out loss %.4f, siblings %s, candidates %s", epoch, e["heldout_loss"],
                 e["siblings"]["accuracy"], e["candidates"]["accuracy"])
        if (e[config.keep_by]["accuracy"] or 0.0) > best[0]:
            best = (e[config.keep_by]["accuracy"], epoch, copy.deepcopy(channel.state_dict()))
    channel.load_state_dict(best[2])
    RewardHead.from_channel(channel, base_model, model_path, None, readout=config.readout).save(
        out, getattr(torch, config.save_dtype))
    report = {"config": asdict(config), "base_model": base_model, "init": str(init) if init else None,
              "answers": {"train": len(train_ex), "heldout": len(held_ex)}, "train_sibling_views": len(pairs),
              "train_candidate_pairs": len(candidates),
              "problems": {"train": len({r.item for r in train}), "heldout": len({r.item for r in heldout})},
              "positions": {"train": sum(len(e.labels) for e in train_ex),
                            "heldout": sum(len(e.labels) for e in held_ex)},
              "keep_trunk": choice_accuracy(choices["siblings"], keep_trunk, lookahead, limit),
              "kept_epoch": best[1], "final": history["epochs"][best[1]], "history": history,
              "timing_s": {"features": round(features_s, 1), "total": round(time.perf_counter() - t0, 1)}}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
