"""What an early-stopped vote saves and costs, on the sample bank's answers alone (no head, no model).

Per problem with a greedy answer (its trunk) and samples, best-of-N by vote with `greedy_first` is replayed
with each stop rule (sla_engine/search/stopping.py), drawing in the batches the server draws
(BestOfNConfig's `first_batch`, then `batch_size`): the answers are the trunk's and the samples' in draw
order, the vote is the server's `majority`, ties going to the first in best-of-N's order with every score
equal (the vote's floor, as in vote_scaling.py; the served head only breaks ties). Reported per rule: the
vote's accuracy and gain over greedy (paired), the samples drawn per problem, and the generated tokens per
problem against the full draw's.

    python -m sla_pipeline.analyses.vote_stopping --bank bank/qwen2.5-coder-0.5b-instruct [--splits heldout]
        [--n 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sla_engine.search.config import BestOfNConfig
from sla_engine.search.stopping import should_stop
from sla_pipeline.bank.read import read_bank
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.cli_args import comma_list
from sla_pipeline.training.choices import against_greedy, best_of_n_order, greedy_and, vote

RULES = (("all", 3), ("decided", 3), ("agree", 2), ("agree", 3), ("agree", 4))


def drawn(answers: list[BankRecord], config: BestOfNConfig) -> int:
    """How many of `answers` (in draw order, at least `config.n`) the server draws before its rule stops."""
    count, size = 0, config.first_batch
    while count < config.n:
        count += min(size, config.n - count)
        if should_stop(config.stop, [a.given for a in answers[:count]], config.n - count, config.window):
            break
        size = config.batch_size
    return count


def replay(records: list[BankRecord], split: str, n: int, limit: int = 512) -> dict:
    """{"split", "n", "problems", "greedy", "rules": {name: {"accuracy", "gain", ..., "samples", "tokens"}}};
    only "problems" (0) without a problem that has n − 1 samples."""
    found = [(t, s) for t, s in greedy_and(r for r in records if r.split == split) if len(s) >= n - 1]
    if not found:
        return {"split": split, "n": n, "problems": 0}
    greedy = [trunk.correct for trunk, _ in found]
    rules = {}
    for stop, window in RULES:
        config = BestOfNConfig(n=n, greedy_first=True, prune_at=0, select="vote", stop=stop, window=window)
        correct, samples, tokens, full = [], 0, 0, 0
        for trunk, others in found:
            answers = [trunk, *others[: n - 1]]
            used = answers[: drawn(answers, config)]
            order = best_of_n_order(used, lambda a, seen: 0.0, limit, prefer_finished=True)
            correct.append(vote(order).correct)
            samples += len(used)
            tokens += sum(a.tokens for a in used)
            full += sum(a.tokens for a in answers)
        name = stop if stop != "agree" else f"agree-{window}"
        if name in rules:
            continue
        rules[name] = {**against_greedy(correct, greedy), "samples": samples / len(found),
                       "tokens_vs_full": tokens / full}
    return {"split": split, "n": n, "problems": len(found), "greedy": sum(greedy) / len(greedy), "rules": rules}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", type=Path, required=True)
    parser.add_argument("--splits", type=comma_list, default="heldout,train")
    parser.add_argument("--n", type=int, nargs="+", default=[5, 9], help="best-of-N sizes [default 5 9]")
    parser.add_argument("--json", type=Path, help="write the replays here")
    args = parser.parse_args(argv)
    records = read_bank(args.bank, rollouts=False)
    replays = [replay(records, split, n) for split in args.splits for n in args.n]
    for r in replays:
        if not r["problems"]:
            print(f"{r['split']}, N = {r['n']}: no problem with greedy's answer and {r['n'] - 1} samples")
            continue
        print(f"{r['split']}, N = {r['n']}: {r['problems']} problems, greedy {r['greedy']:.3f}")
        for name, v in r["rules"].items():
            low, high = (100 * x for x in v["gain_ci95"])
            print(f"  {name:9s} vote {v['accuracy']:.3f}, {100 * v['gain']:+.1f} points [{low:+.1f}, {high:+.1f}], "
                  f"{v['fixed']} / {v['broke']}; {v['samples']:.2f} answers drawn, {v['tokens_vs_full']:.2f} of the "
                  "full draw's tokens")
    if args.json:
        args.json.write_text(json.dumps({"bank": str(args.bank), "replays": replays}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
