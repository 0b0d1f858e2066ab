"""`sla train`: the reward channel and head on a frozen policy, from preference pairs (`sla data`).

1. Tokenize every distinct (prompt, response) as the server will see it; compute the backbone's features
   at response positions once (`features.py`), then free the backbone.
2. AdamW with warmup + cosine decay over `epochs` passes of shuffled pairs; the loss per `config.py`.
3. After each epoch: held-out loss, pair accuracy and the AuTRC curve (`metrics.py`).
4. Calibrates the head on the policy's own training answers (`calibration.py`: served rewards are in
   standard deviations of its typical token reward; losses and metrics above are of the raw head).
5. Writes the head (reward_head.{json,safetensors}, the format the server loads) and report.{json,png}.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from sla_engine.reward import RewardChannel, RewardHead
from sla_pipeline.data.jsonl import BadLine
from sla_pipeline.data.pairs import Pair, read_pairs
from sla_pipeline.training.calibration import POLICY_SOURCES, calibrate, own_answers
from sla_pipeline.training.config import TrainConfig
from sla_pipeline.training.features import FeatureCache, TokenizedResponse, frozen_backbone, tokenize
from sla_pipeline.training.losses import pair_loss
from sla_pipeline.training.metrics import FRACTIONS, autrc, parting, trc_curve
from sla_pipeline.training.optim import cosine_with_warmup, initial_channel

log = logging.getLogger(__name__)


class LeakError(ValueError):
    """Training data contains held-out items."""


def check_split(train: list[Pair], heldout: list[Pair]) -> None:
    """Every training pair must be on the train side, and no item may appear on both sides."""
    wrong = [p.id for p in train if p.split != "train"]
    if wrong:
        raise LeakError(f"{len(wrong)} held-out pairs in the training file, e.g. {wrong[:3]}")
    shared = {p.item for p in train} & {p.item for p in heldout}
    if shared:
        raise LeakError(f"{len(shared)} items are in both the training and held-out files, e.g. {sorted(shared)[:3]}")


@dataclass
class EncodedPair:
    chosen: TokenizedResponse
    rejected: TokenizedResponse

    def seen(self, lookahead: int | None) -> int | None:
        """How many response tokens of each side the loss sees: `lookahead` past where the two part, or all."""
        if lookahead is None:
            return None
        return parting(self.chosen.response_ids, self.rejected.response_ids) + lookahead


def encode_pairs(tokenizer, pairs: list[Pair], max_response_tokens: int) -> list[EncodedPair]:
    """Both responses of each pair tokenized as the server renders them; pairs with an empty side are left out."""
    encoded = [EncodedPair(tokenize(tokenizer, p.prompt, p.chosen, max_response_tokens),
                           tokenize(tokenizer, p.prompt, p.rejected, max_response_tokens)) for p in pairs]
    return [e for e in encoded if e.chosen.response_ids and e.rejected.response_ids]


@dataclass
class History:
    steps: list[dict] = field(default_factory=list)  # {"step", "epoch", "loss", "lr"}
    epochs: list[dict] = field(default_factory=list)  # {"epoch", "heldout_loss", "pair_accuracy", "curve", "autrc"}


def _stack(cache: FeatureCache, seqs: list[TokenizedResponse],
           seen: list[int | None]) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Layer inputs [B, T, H] per layer, final normed [B, T, H] and mask [B, T] for a padded batch; the mask
    covers each response's first `seen` tokens (all where None)."""
    feats = [cache.get(s.key).float() for s in seqs]
    width = max(f.shape[1] for f in feats)
    depth, hidden = feats[0].shape[0], feats[0].shape[2]
    x = torch.zeros(depth, len(seqs), width, hidden)
    mask = torch.zeros(len(seqs), width)
    for i, (f, n) in enumerate(zip(feats, seen)):
        x[:, i, : f.shape[1]] = f
        mask[i, : f.shape[1] if n is None else min(n, f.shape[1])] = 1
    return list(x[:-1]), x[-1], mask


def rewards(channel: RewardChannel, cache: FeatureCache, seqs: list[TokenizedResponse],
            seen: list[int | None]) -> tuple[torch.Tensor, torch.Tensor]:
    layers, final, mask = _stack(cache, seqs, seen)
    return channel(layers, final) * mask, mask


def pair_batch_rewards(channel: RewardChannel, cache: FeatureCache, part: list[EncodedPair],
                       config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rewards and masks of a batch of pairs' chosen and rejected sides, as far as `config.lookahead` sees."""
    seen = [p.seen(config.lookahead) for p in part]
    return (*rewards(channel, cache, [p.chosen for p in part], seen),
            *rewards(channel, cache, [p.rejected for p in part], seen))


@torch.no_grad()
def pair_rewards(channel: RewardChannel, cache: FeatureCache, pairs: list[EncodedPair], config: TrainConfig,
                 batch: int = 16) -> tuple[list[list[float]], list[list[float]], float]:
    """Per-token rewards of every pair's chosen and rejected response (as far as `config.lookahead` sees), and
    the mean loss."""
    chosen, rejected, loss = [], [], 0.0
    for i in range(0, len(pairs), batch):
        part = pairs[i:i + batch]
        rc, mc, rr, mr = pair_batch_rewards(channel, cache, part, config)
        loss += pair_loss(config.loss, rc, mc, rr, mr).item() * len(part)
        chosen += [r[: int(m.sum())].tolist() for r, m in zip(rc, mc)]
        rejected += [r[: int(m.sum())].tolist() for r, m in zip(rr, mr)]
    return chosen, rejected, loss / len(pairs)


def evaluate(channel: RewardChannel, cache: FeatureCache, pairs: list[EncodedPair], config: TrainConfig) -> dict:
    chosen, rejected, loss = pair_rewards(channel, cache, pairs, config)
    curve = trc_curve(chosen, rejected)
    return {"heldout_loss": loss, "pair_accuracy": curve[1.0],
            "curve": {str(f): a for f, a in curve.items()}, "autrc": autrc(curve)}


def train(model_path: Path, base_model: str, train_file: Path, heldout_file: Path, out: Path, config: TrainConfig,
          cache_dir: Path | None = None, backbone=None, init: Path | None = None) -> dict:
    """Trains a head (from scratch, or on from the head in `init`) and writes it with its report into `out`;
    returns the report."""
    from transformers import AutoTokenizer

    t_start = time.perf_counter()
    bad: list[BadLine] = []
    train_pairs, heldout_pairs = read_pairs(train_file, bad), read_pairs(heldout_file, bad)  # bad ones logged
    check_split(train_pairs, heldout_pairs)
    if not train_pairs or not heldout_pairs:
        raise ValueError(f"need training and held-out pairs, got {len(train_pairs)} and {len(heldout_pairs)}")
    torch.manual_seed(config.seed)

    tokenizer = AutoTokenizer.from_pretrained(model_path)

    train_enc = encode_pairs(tokenizer, train_pairs, config.max_response_tokens)
    heldout_enc = encode_pairs(tokenizer, heldout_pairs, config.max_response_tokens)
    cache = FeatureCache(cache_dir or out / "features")
    t_features = time.perf_counter()
    own = own_answers(tokenizer, train_pairs, config.max_response_tokens)
    needed = [s for e in train_enc + heldout_enc for s in (e.chosen, e.rejected)] + own
    if any(s.key not in cache for s in needed):
        backbone = backbone or frozen_backbone(model_path)
        cache.fill(backbone, needed)
    del backbone
    features_s = time.perf_counter() - t_features

    channel = initial_channel(model_path, config, init)
    optimizer = torch.optim.AdamW(channel.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_enc) / config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(steps_per_epoch * config.epochs, config.warmup))
    history = History()
    history.epochs.append({"epoch": 0, **evaluate(channel, cache, heldout_enc, config)})
    rng = random.Random(config.seed)
    step = 0
    t_train = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        order = train_enc[:]
        rng.shuffle(order)
        bar = tqdm(range(0, len(order), config.batch_size), desc=f"epoch {epoch}/{config.epochs}",
                   unit="step", dynamic_ncols=True)
        for i in bar:
            part = order[i:i + config.batch_size]
            rc, mc, rr, mr = pair_batch_rewards(channel, cache, part, config)
            loss = pair_loss(config.loss, rc, mc, rr, mr)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            history.steps.append({"step": step, "epoch": epoch, "loss": loss.item(), "lr": schedule.get_last_lr()[0]})
            bar.set_postfix(loss=f"{loss.item():.4f}")
        history.epochs.append({"epoch": epoch, **evaluate(channel, cache, heldout_enc, config)})
        e = history.epochs[-1]
        log.info("epoch %d: held-out loss %.4f, pair accuracy %.3f, AuTRC %.3f",
                 epoch, e["heldout_loss"], e["pair_accuracy"], e["autrc"])
    train_s = time.perf_counter() - t_train

    calibration = None
    if len(own) >= 2:
        calibration = calibrate(channel, cache, own, POLICY_SOURCES)
    else:
        log.warning("no policy answers (sources %s) among the training pairs: the head is saved uncalibrated",
                    ", ".join(POLICY_SOURCES))
    head = RewardHead.from_channel(channel, base_model, model_path, calibration)
    head.save(out, getattr(torch, config.save_dtype))
    report = {
        "config": asdict(config), "base_model": base_model, "init": str(init) if init else None,
        "train_file": str(train_file),
        "heldout_file": str(heldout_file), "pairs": {"train": len(train_enc), "heldout": len(heldout_enc)},
        "pairs_by_source": {split: _by_source(ps) for split, ps in (("train", train_pairs), ("heldout",
                                                                                             heldout_pairs))},
        "skipped_lines": [str(b) for b in bad], "final": history.epochs[-1], "history": asdict(history),
        "calibration": calibration.to_json() if calibration else None,
        "timing_s": {"features": round(features_s, 1), "train": round(train_s, 1),
                     "total": round(time.perf_counter() - t_start, 1)},
        "response_tokens": sum(len(s.response_ids) for s in {s.key: s for s in needed}.values()),
        "fractions": list(FRACTIONS),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    from sla_pipeline.training.report import plot

    plot(report, out / "report.png")
    return report


def _by_source(pairs: list[Pair]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.source] = counts.get(p.source, 0) + 1
    return counts
