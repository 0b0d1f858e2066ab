"""Calibrating a head (the last step of `sla train`, and `sla calibrate` for a head that exists): measure its
per-token reward on the policy's own training answers — those of `sla data`'s training pairs, or the sample
bank's train-side answers (`calibrate_on_bank`: how a value head trained on the bank is calibrated) — and fold
the standardization into it (`sla_engine/reward/calibration.py` says why)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch

from sla_engine.reward import RewardChannel, RewardHead
from sla_engine.reward.calibration import Calibration, fold
from sla_pipeline.bank.read import first_problems
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.data.pairs import Pair, read_pairs
from sla_pipeline.training.features import FeatureCache, TokenizedResponse, frozen_backbone, rewards_of, tokenize
from sla_pipeline.training.value_data import scored_length

log = logging.getLogger(__name__)

POLICY_SOURCES = ("gsm", "gsm_fork", "alpaca")  # both answers of these pairs were sampled from the policy itself
BANK_SOURCES = ("bank-train",)  # the sample bank's train-side greedy answers and samples


def own_answers(tokenizer, pairs: list[Pair], max_response_tokens: int) -> list[TokenizedResponse]:
    """The distinct, non-empty policy answers among training pairs (chosen and rejected alike)."""
    seqs = {}
    for p in pairs:
        if p.split == "train" and p.source in POLICY_SOURCES:
            for text in (p.chosen, p.rejected):
                s = tokenize(tokenizer, p.prompt, text, max_response_tokens)
                if s.response_ids:
                    seqs[s.key] = s
    return list(seqs.values())


@torch.no_grad()
def measure(channel: RewardChannel, cache: FeatureCache, seqs: list[TokenizedResponse],
            sources: tuple[str, ...]) -> Calibration:
    values = []
    for s in seqs:
        features = cache.get(s.key).float()  # [L + 1, T, H]
        values.append(channel(list(features[:-1]), features[-1]))
    return Calibration.measure(torch.cat(values), sources)


def calibrate(channel: RewardChannel, cache: FeatureCache, seqs: list[TokenizedResponse],
              sources: tuple[str, ...]) -> Calibration:
    """Measures and folds in place; returns what was measured (on the channel as it was)."""
    calibration = measure(channel, cache, seqs, sources)
    fold(channel, calibration)
    log.info("calibrated on %d tokens: raw mean %.4f, std %.4f", calibration.tokens, calibration.mean, calibration.std)
    return calibration


def calibrate_head(model_path: Path, head_dir: Path, train_file: Path, cache_dir: Path,
                   max_response_tokens: int) -> Calibration:
    """`sla calibrate --data`: rewrites the head in `head_dir` calibrated on `train_file`'s policy answers
    (`fold_and_save`)."""
    from transformers import AutoTokenizer

    head = RewardHead.load_for(head_dir, model_path)
    seqs = own_answers(AutoTokenizer.from_pretrained(model_path), read_pairs(train_file), max_response_tokens)
    if len(seqs) < 2:
        raise ValueError(f"{train_file}: fewer than 2 policy answers (sources {', '.join(POLICY_SOURCES)}) to "
                         "calibrate on")
    cache = FeatureCache(cache_dir).complete(model_path, seqs)
    return fold_and_save(head, measure(head.channel(), cache, seqs, POLICY_SOURCES), head_dir, model_path)


def fold_and_save(head: RewardHead, measured: Calibration, head_dir: Path, model_path: Path) -> Calibration:
    """Folds `measured` (the head's served rewards' mean and std) into `head` and rewrites it in `head_dir`
    (same read-out; every tensor in its dtype but the folded last layer, kept in float32 so that the map is
    exact: w / σ rounded to bf16 would move each answer's rewards by its own error and could reorder near
    ties). Recalibrating a calibrated head composes the two maps, so the file always records raw → served."""
    channel = head.channel()
    fold(channel, measured)
    before = head.calibration
    total = measured if before is None else Calibration(
        before.mean + before.std * measured.mean, before.std * measured.std, measured.tokens, measured.sources)
    folded = RewardHead.from_channel(channel, head.base_model, model_path, total, head.readout)
    state = {k: v if k.startswith("head.") else v.to(head.state_dict[k].dtype) for k, v in folded.state_dict.items()}
    replace(folded, state_dict=state).save(head_dir, dtype=None)
    log.info("%s: calibrated on %d tokens: mean %.4f, std %.4f", head_dir, measured.tokens, measured.mean, measured.std)
    return total


def bank_answers(records: list[BankRecord], problems: int) -> list[BankRecord]:
    """The greedy answers and samples of each domain's first `problems` train-side problems, in bank order (forks
    are left out: their prefix is their trunk's, counted once). Per domain, so that a head serving several is
    standardized on all of them."""
    train = first_problems([r for r in records if r.split == "train"], problems)
    return [r for r in train if r.kind in ("trunk", "sample")]


def calibrate_on_bank(model_path: Path, head_dir: Path, answers: list[BankRecord], prompts: dict[str, list[int]],
                      limit: int = 512, backbone=None) -> Calibration:
    """`sla calibrate --bank`: rewrites the head in `head_dir` calibrated on the rewards it gives at every
    position a search reads (`scored_length`, at most `limit`) of `answers` (`bank_answers`)."""
    head = RewardHead.load_for(head_dir, model_path)
    seen = {a.id: (a, scored_length(a, limit)) for a in answers}
    if not seen:
        raise ValueError("no train-side greedy answer or sample in the bank to calibrate on")
    if backbone is None:
        backbone = frozen_backbone(model_path)
    served = rewards_of(backbone, [head], seen, prompts)[0]
    values = torch.tensor([x for rewards in served.values() for x in rewards])
    return fold_and_save(head, Calibration.measure(values, BANK_SOURCES), head_dir, model_path)
