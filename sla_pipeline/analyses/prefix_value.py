"""How much of a GSM answer's outcome is decided where SLA(2,10,2) stops reading? The value a head is trained
toward, measured directly.

On the bank's validation sibling pairs (a trunk and a fork, one right and one wrong), both answers cut
`lookahead` tokens past where they part — what SLA(2,10,2) reads — have been continued by the policy
(`sla bank grow --jobs validation-rollouts`: the bank's rollouts, bank/rollouts.py). A prefix's Monte-Carlo
value is the share of its rollouts that end right: the prefix-success rate a value head is trained toward
(TVM, arXiv 2407.12863), drawn instead of learned. The pair is ranked right when the right sibling's prefix
has the higher value (a tie counts half); the accuracy with the first 1, 2, … rollouts shows how far more
would take it. If the policy's own continuations cannot tell the two prefixes apart, a head trained on them
cannot either, and SLA at this look-ahead has nothing to find.

    python -m sla_pipeline.analyses.prefix_value --bank bank/MODEL [--rollouts 4] [--lookahead 30] \
        [--pairs N] [--json FILE]

A pair counts once both its prefixes have `--rollouts` rollouts (or ended inside the look-ahead);
`--pairs` takes the first N pairs in bank order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sla_pipeline.bank.pairs import AnswerPair, sibling_pairs
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.bank.rollouts import Prefix, Rollouts, by_prefix, pair_prefixes
from sla_pipeline.eval.stats import bootstrap_ci


def value(prefix: Prefix, rollouts: Rollouts, first: int) -> float | None:
    """A prefix's Monte-Carlo value from its first `first` rollouts (None: fewer drawn); an answer that ends
    inside the look-ahead is read whole (its own outcome), as SLA reads a finished leaf."""
    if prefix.read_whole:
        return float(prefix.answer.correct)
    drawn = rollouts.get(prefix.key, [])[:first]
    return sum(r.correct for r in drawn) / first if len(drawn) == first else None


def accuracy(pairs: list[AnswerPair], rollouts: Rollouts, lookahead: int, first: int) -> dict:
    """Pairs ranked by the prefixes' Monte-Carlo values from each side's first `first` rollouts."""
    outcomes, groups = [], []
    for p in pairs:
        right, wrong = (value(side, rollouts, first) for side in pair_prefixes(p, lookahead))
        outcomes.append(1.0 if right > wrong else 0.5 if right == wrong else 0.0)
        groups.append(p.item)
    return {"draws": first, "pairs": len(pairs), "accuracy": sum(outcomes) / len(outcomes),
            "ci95": bootstrap_ci(outcomes, groups=groups), "ties": sum(o == 0.5 for o in outcomes)}


def summary(pairs: list[AnswerPair], rollouts: Rollouts, per_prefix: int, lookahead: int) -> dict:
    done = [p for p in pairs if all(value(s, rollouts, per_prefix) is not None for s in pair_prefixes(p, lookahead))]
    if not done:
        return {"lookahead": lookahead, "rollouts": per_prefix, "pairs": 0}
    values = [[value(s, rollouts, per_prefix) for s in pair_prefixes(p, lookahead)] for p in done]
    by_draws = [accuracy(done, rollouts, lookahead, k) for k in sorted({1, 2, 4, 8, 16, per_prefix})
                if k <= per_prefix]
    return {"lookahead": lookahead, "rollouts": per_prefix, "pairs": len(done),
            "problems": len({p.item for p in done}),
            "mean_value": {name: sum(v[i] for v in values) / len(values) for i, name in enumerate(("right", "wrong"))},
            "finished_in_window": sum(s.read_whole for p in done for s in pair_prefixes(p, lookahead)),
            "lookahead_accuracy": by_draws[-1]["accuracy"], "lookahead_ci95": by_draws[-1]["ci95"],
            "by_draws": by_draws}


def validation_siblings(records: list[BankRecord], count: int | None) -> list[AnswerPair]:
    return sibling_pairs(r for r in records if r.split == "heldout")[:count]


def main(argv: list[str] | None = None) -> int:
    from sla_pipeline.bank.read import read_bank

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", type=Path, required=True)
    parser.add_argument("--rollouts", type=int, default=4, help="rollouts per prefix a pair needs [default 4]")
    parser.add_argument("--lookahead", type=int, default=30, help="tokens past the fork [default 30: SLA(2,10,2)]")
    parser.add_argument("--pairs", type=int, help="only the first N validation sibling pairs, in bank order")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.rollouts < 1 or args.lookahead < 1:
        parser.error("--rollouts and --lookahead must be at least 1")
    records = read_bank(args.bank)
    pairs = validation_siblings(records, args.pairs)
    result = summary(pairs, by_prefix(records), args.rollouts, args.lookahead)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"bank": str(args.bank), **result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
