"""`sla score-pairs`: how well an existing head orders the pairs of any pairs file, per source.

The question it answers for search: does the head prefer the better of two answers of the kind a strategy
compares? (`gsm_fork` pairs are siblings that share a prefix, the choice SLA makes; `gsm` pairs are
independent answers, best-of-N's.) Pair accuracy comes with a bootstrap 95 % interval over items (whole
problems are resampled: the pairs built from one problem are not independent); AuTRC as in training
(metrics.py). Rankings do not depend on the head's calibration, so any served head can be scored.

With `lookahead` n, each pair is also scored as SLA sees it: both responses cut n tokens past the point where
they part ("lookahead_accuracy"). For siblings that is SLA's decision at a fork with n = (d + 1) · k (the
candidate's chunk, which starts with the fork token, and d chunks below it); the
full-length accuracy instead tells whether the head can read the finished answers.

Best-of-N's choice is also replayed: per item, the response with the highest mean reward among all of the
item's responses in the file, counted right when no pair rejects it ("pick"; on GSM's right-against-wrong pairs,
did the head pick a right answer). With `compare`, a second head scores the same pairs and the two are compared
pair by pair, the gain's interval again bootstrapped over items.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sla_engine.reward import RewardHead
from sla_pipeline.data.pairs import Pair, read_pairs
from sla_pipeline.eval.stats import bootstrap_ci
from sla_pipeline.training.config import TrainConfig
from sla_pipeline.training.features import FeatureCache
from sla_pipeline.training.metrics import autrc, prefix_mean, prefix_outcomes, trc_curve
from sla_pipeline.training.trainer import encode_pairs, pair_rewards


def picks(pairs: Sequence[Pair], chosen_means: Sequence[float], rejected_means: Sequence[float]) -> dict[str, bool]:
    """Per item: is the response with the highest mean reward among the item's responses one that no pair
    rejects? (A tie goes to the response met first.)"""
    means: dict[str, dict[str, float]] = defaultdict(dict)
    rejected: dict[str, set[str]] = defaultdict(set)
    for pair, c, r in zip(pairs, chosen_means, rejected_means, strict=True):
        means[pair.item][pair.chosen], means[pair.item][pair.rejected] = c, r
        rejected[pair.item].add(pair.rejected)
    return {item: max(m, key=m.get) not in rejected[item] for item, m in means.items()}


def compare_outcomes(outcomes: Sequence[float], other: Sequence[float], items: Sequence[str]) -> dict:
    """One head's pair outcomes (1 right, 0.5 tie, 0 wrong) against another's on the same pairs."""
    gains = [a - b for a, b in zip(outcomes, other, strict=True)]
    return {"only_head": sum(a > b for a, b in zip(outcomes, other)),
            "only_other": sum(b > a for a, b in zip(outcomes, other)),
            "gain": sum(gains) / len(gains), "gain_ci95": bootstrap_ci(gains, groups=items)}


def score_pairs(model_path: Path, head_dir: Path, pairs_file: Path, cache_dir: Path,
                max_response_tokens: int, lookahead: int | None = None, compare: Path | None = None) -> dict[str, dict]:
    """{source: {"pairs", "pair_accuracy", "ci95", "curve", "autrc", "pick"}} with "all" for every pair together;
    with `lookahead`, also "lookahead_accuracy" and "lookahead_ci95"; with `compare` (another head's folder),
    also "compare": that head's "pair_accuracy" and "pick", and `compare_outcomes` of this head against it."""
    from transformers import AutoTokenizer

    TrainConfig(max_response_tokens=max_response_tokens, lookahead=lookahead)  # refuses bad values before any work
    heads = [RewardHead.load_for(head_dir, model_path)]
    if compare is not None:
        heads.append(RewardHead.load_for(compare, model_path))
    pairs = read_pairs(pairs_file)  # malformed lines are logged and skipped
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    kept = [(p, e) for p in pairs for e in encode_pairs(tokenizer, [p], max_response_tokens)]
    kept_pairs, encoded = [p for p, _ in kept], [e for _, e in kept]
    if not encoded:
        raise ValueError(f"{pairs_file}: no pairs to score")
    cache = FeatureCache(cache_dir).complete(model_path, [s for e in encoded for s in (e.chosen, e.rejected)])
    full = TrainConfig(max_response_tokens=max_response_tokens)
    (chosen, rejected, _), *other = [pair_rewards(h.channel(), cache, encoded, full) for h in heads]
    if lookahead is not None:  # as far as SLA sees them: a token's reward depends on nothing after it
        seen = [e.seen(lookahead) for e in encoded]
        seen_c, seen_r = [c[:n] for c, n in zip(chosen, seen)], [r[:n] for r, n in zip(rejected, seen)]
    result = {}
    for source in ["all"] + sorted({p.source for p in kept_pairs}):
        picked = [i for i, p in enumerate(kept_pairs) if source in ("all", p.source)]
        these = [kept_pairs[i] for i in picked]
        items = [p.item for p in these]
        ranked = _ranked(these, [chosen[i] for i in picked], [rejected[i] for i in picked])
        result[source] = {"pairs": len(picked), "pair_accuracy": ranked["curve"][1.0],
                          "ci95": bootstrap_ci(ranked["outcomes"], groups=items),
                          "curve": {str(f): a for f, a in ranked["curve"].items()}, "autrc": autrc(ranked["curve"]),
                          "pick": ranked["pick"]}
        if lookahead is not None:
            outcomes = prefix_outcomes([seen_c[i] for i in picked], [seen_r[i] for i in picked], 1.0)
            result[source] |= {"lookahead_accuracy": sum(outcomes) / len(outcomes),
                               "lookahead_ci95": bootstrap_ci(outcomes, groups=items)}
        if other:
            o_chosen, o_rejected, _ = other[0]
            theirs = _ranked(these, [o_chosen[i] for i in picked], [o_rejected[i] for i in picked])
            result[source]["compare"] = {"head": str(compare), "pair_accuracy": theirs["curve"][1.0],
                                         "pick": theirs["pick"]} | \
                compare_outcomes(ranked["outcomes"], theirs["outcomes"], items)
    return result


def _ranked(pairs: Sequence[Pair], chosen: Sequence[Sequence[float]], rejected: Sequence[Sequence[float]]) -> dict:
    """Pair outcomes, the ranking curve and best-of-N's picks of one head's rewards."""
    right = picks(pairs, [prefix_mean(c, 1.0) for c in chosen], [prefix_mean(r, 1.0) for r in rejected])
    return {"outcomes": prefix_outcomes(chosen, rejected, 1.0), "curve": trc_curve(chosen, rejected),
            "pick": {"items": len(right), "right": sum(right.values())}}
