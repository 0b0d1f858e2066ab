"""Calibrating a head (the last step of `sla train`, and `sla calibrate` for a head that exists): measure its
per-token reward on the policy's own training answers and fold the standardization into it
(`sla_engine/reward/calibration.py` says why)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from sla_engine.reward import RewardChannel, RewardHead
from sla_engine.reward.calibration import Calibration, fold
from sla_pipeline.data.pairs import Pair, read_pairs
from sla_pipeline.training.features import FeatureCache, TokenizedResponse, tokenize

log = logging.getLogger(__name__)

POLICY_SOURCES = ("gsm", "gsm_fork", "alpaca")  # both answers of these pairs were sampled from the policy itself


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
    """`sla calibrate`: rewrites the head in `head_dir` (same dtype) calibrated on `train_file`'s policy answers.
    Recalibrating a calibrated head composes the two maps, so the file always records raw → served."""
    from transformers import AutoTokenizer

    head = RewardHead.load_for(head_dir, model_path)
    seqs = own_answers(AutoTokenizer.from_pretrained(model_path), read_pairs(train_file), max_response_tokens)
    if len(seqs) < 2:
        raise ValueError(f"{train_file}: fewer than 2 policy answers (sources {', '.join(POLICY_SOURCES)}) to calibrate on")
    cache = FeatureCache(cache_dir).complete(model_path, seqs)
    channel = head.channel()
    measured = calibrate(channel, cache, seqs, POLICY_SOURCES)
    before = head.calibration
    total = measured if before is None else Calibration(
        before.mean + before.std * measured.mean, before.std * measured.std, measured.tokens, measured.sources)
    dtype = next(iter(head.state_dict.values())).dtype
    RewardHead.from_channel(channel, head.base_model, model_path, total, head.readout).save(head_dir, dtype)
    return total
