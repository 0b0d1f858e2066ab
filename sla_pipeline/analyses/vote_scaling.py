"""How best-of-N's majority vote grows with N, on the sample bank's answers alone (no head, no model).

Per problem with a greedy answer (its trunk) and samples: best-of-N with `greedy_first` and `select: "vote"`
over the trunk and the first N − 1 samples in draw order, the server's `majority` of their final numbers,
ties going to the first in best-of-N's order with every score equal (finished answers first, then draw
order: greedy). That is the vote's floor — the head only breaks ties, so a served vote differs from it
where the head ranks tied answers otherwise — and with the oracle (some answer right) it says whether more
samples would pay before a server row draws them.

    python -m sla_pipeline.analyses.vote_scaling --bank bank/qwen2.5-coder-0.5b-instruct \
        [--splits train,heldout] [--json FILE]

Prints per split and N the vote's accuracy, its gain over greedy with a paired 95 % interval, fixed / broke,
and the oracle. On the train split the answers are drawn for training, not for choosing on: the curve's
shape, not its level, is what carries over.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from sla_pipeline.bank.read import read_bank
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.cli_args import comma_list
from sla_pipeline.training.choices import against_greedy, best_of_n_order, greedy_and, vote


def vote_curve(records: Iterable[BankRecord], split: str, limit: int = 512) -> dict:
    """{"split", "problems", "samples" (the fewest any problem has), "greedy", "by_n": {N: {"oracle",
    "accuracy", "fixed", "broke", "gain", "gain_ci95", "p_value", "changed_right"}}} for N = 2 .. samples + 1;
    only "split" and "problems" (0) without a problem."""
    found = greedy_and(r for r in records if r.split == split)
    if not found:
        return {"split": split, "problems": 0}
    most = min(len(samples) for _, samples in found)
    greedy = [trunk.correct for trunk, _ in found]
    by_n = {}
    for n in range(2, most + 2):
        voted, oracle = [], []
        for trunk, samples in found:
            order = best_of_n_order([trunk, *samples[: n - 1]], lambda a, seen: 0.0, limit, prefer_finished=True)
            voted.append(vote(order).correct)
            oracle.append(any(r.correct for r in order))
        by_n[n] = {"oracle": sum(oracle) / len(oracle), **against_greedy(voted, greedy)}
    return {"split": split, "problems": len(found), "samples": most, "greedy": sum(greedy) / len(greedy),
            "by_n": by_n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", type=Path, required=True)
    parser.add_argument("--splits", type=comma_list, default="train,heldout")
    parser.add_argument("--json", type=Path, help="write the curves here")
    args = parser.parse_args(argv)
    records = read_bank(args.bank)
    curves = [vote_curve(records, split) for split in args.splits]
    for c in curves:
        if not c["problems"]:
            print(f"{c['split']}: no problem with greedy's answer and samples")
            continue
        print(f"{c['split']}: {c['problems']} problems, greedy {c['greedy']:.3f}")
        for n, v in c["by_n"].items():
            print(f"  best-of-{n} vote {v['accuracy']:.3f}, {100 * v['gain']:+.1f} points "
                  f"[{100 * v['gain_ci95'][0]:+.1f}, {100 * v['gain_ci95'][1]:+.1f}], fixed {v['fixed']} / broke "
                  f"{v['broke']}; oracle {v['oracle']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"bank": str(args.bank), "curves": curves}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
