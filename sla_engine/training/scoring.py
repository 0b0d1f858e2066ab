"""`sla score-pairs`: how well an existing head orders the pairs of any pairs file, per source.

The question it answers for search: does the head prefer the better of two answers of the kind a strategy
compares? (`gsm_fork` pairs are siblings that share a prefix, the choice SLA makes; `gsm` pairs are
independent answers, best-of-N's.) Pair accuracy comes with a bootstrap 95 % interval over pairs; AuTRC as in
training (metrics.py). Rankings do not depend on the head's calibration, so any served head can be scored.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sla_engine.data.jsonl import BadLine
from sla_engine.data.pairs import read_pairs
from sla_engine.eval.stats import bootstrap_ci
from sla_engine.reward import RewardHead
from sla_engine.training.config import TrainConfig
from sla_engine.training.features import FeatureCache, tokenize
from sla_engine.training.metrics import autrc, prefix_outcomes, trc_curve
from sla_engine.training.trainer import EncodedPair, pair_rewards

log = logging.getLogger(__name__)


def score_pairs(model_path: Path, head_dir: Path, pairs_file: Path, cache_dir: Path,
                max_response_tokens: int = 256) -> dict[str, dict]:
    """{source: {"pairs", "pair_accuracy", "ci95", "curve", "autrc"}} with "all" for every pair together."""
    from transformers import AutoTokenizer

    head = RewardHead.load_for(head_dir, model_path)
    bad: list[BadLine] = []
    pairs = read_pairs(pairs_file, bad)
    for b in bad:
        log.warning("skipped %s", b)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    encoded = [(p.source, EncodedPair(tokenize(tokenizer, p.prompt, p.chosen, max_response_tokens),
                                      tokenize(tokenizer, p.prompt, p.rejected, max_response_tokens)))
               for p in pairs]
    encoded = [(s, e) for s, e in encoded if e.chosen.response_ids and e.rejected.response_ids]
    if not encoded:
        raise ValueError(f"{pairs_file}: no pairs to score")
    cache = FeatureCache(cache_dir).complete(model_path, [s for _, e in encoded for s in (e.chosen, e.rejected)])
    channel = head.channel()
    config = TrainConfig(max_response_tokens=max_response_tokens)
    result = {}
    for source in ["all"] + sorted({s for s, _ in encoded}):
        chosen, rejected, _ = pair_rewards(channel, cache, [e for s, e in encoded if source in ("all", s)], config)
        curve = trc_curve(chosen, rejected)
        result[source] = {"pairs": len(chosen), "pair_accuracy": curve[1.0],
                          "ci95": bootstrap_ci(prefix_outcomes(chosen, rejected, 1.0)),
                          "curve": {str(f): a for f, a in curve.items()}, "autrc": autrc(curve)}
    return result
