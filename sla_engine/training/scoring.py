"""`sla score-pairs`: how well an existing head orders the pairs of any pairs file, per source.

The question it answers for search: does the head prefer the better of two answers of the kind a strategy
compares? (`gsm_fork` pairs are siblings that share a prefix, the choice SLA makes; `gsm` pairs are
independent answers, best-of-N's.) Pair accuracy comes with a bootstrap 95 % interval over pairs; AuTRC as in
training (metrics.py). Rankings do not depend on the head's calibration, so any served head can be scored.

With `lookahead` n, each pair is also scored as SLA sees it: both responses cut n tokens past the point where
they part ("lookahead_accuracy"). For siblings that is SLA's decision at a fork with look-ahead d · k = n; the
full-length accuracy instead tells whether the head can read the finished answers.
"""

from __future__ import annotations

from pathlib import Path

from sla_engine.data.pairs import read_pairs
from sla_engine.eval.stats import bootstrap_ci
from sla_engine.reward import RewardHead
from sla_engine.training.config import TrainConfig
from sla_engine.training.features import FeatureCache
from sla_engine.training.metrics import autrc, prefix_outcomes, trc_curve
from sla_engine.training.trainer import encode_pairs, pair_rewards


def score_pairs(model_path: Path, head_dir: Path, pairs_file: Path, cache_dir: Path,
                max_response_tokens: int, lookahead: int | None = None) -> dict[str, dict]:
    """{source: {"pairs", "pair_accuracy", "ci95", "curve", "autrc"}} with "all" for every pair together; with
    `lookahead`, also "lookahead_accuracy" and "lookahead_ci95"."""
    from transformers import AutoTokenizer

    TrainConfig(max_response_tokens=max_response_tokens, lookahead=lookahead)  # refuses bad values before any work
    head = RewardHead.load_for(head_dir, model_path)
    pairs = read_pairs(pairs_file)  # malformed lines are logged and skipped
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    kept = [(p.source, e) for p in pairs for e in encode_pairs(tokenizer, [p], max_response_tokens)]
    sources, encoded = [s for s, _ in kept], [e for _, e in kept]
    if not encoded:
        raise ValueError(f"{pairs_file}: no pairs to score")
    cache = FeatureCache(cache_dir).complete(model_path, [s for e in encoded for s in (e.chosen, e.rejected)])
    channel = head.channel()
    chosen, rejected, _ = pair_rewards(channel, cache, encoded, TrainConfig(max_response_tokens=max_response_tokens))
    if lookahead is not None:  # as far as SLA sees them: a token's reward depends on nothing after it
        seen = [e.seen(lookahead) for e in encoded]
        seen_c, seen_r = [c[:n] for c, n in zip(chosen, seen)], [r[:n] for r, n in zip(rejected, seen)]
    result = {}
    for source in ["all"] + sorted(set(sources)):
        picked = [i for i, s in enumerate(sources) if source in ("all", s)]
        c, r = [chosen[i] for i in picked], [rejected[i] for i in picked]
        curve = trc_curve(c, r)
        result[source] = {"pairs": len(picked), "pair_accuracy": curve[1.0],
                          "ci95": bootstrap_ci(prefix_outcomes(c, r, 1.0)),
                          "curve": {str(f): a for f, a in curve.items()}, "autrc": autrc(curve)}
        if lookahead is not None:
            outcomes = prefix_outcomes([seen_c[i] for i in picked], [seen_r[i] for i in picked], 1.0)
            result[source] |= {"lookahead_accuracy": sum(outcomes) / len(outcomes),
                               "lookahead_ci95": bootstrap_ci(outcomes)}
    return result
