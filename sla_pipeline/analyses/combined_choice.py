"""Would fork rollouts and best-of-N's samples do better together? On the bank's validation problems with a
greedy answer (its trunk), forks and samples, each rule below replayed by the server's ranking (`best_of_n_order`:
finished answers first, then the head's score over the whole answer, then draw order) and vote (`majority`
of the final numbers, the head's order breaking ties), against greedy:

    forks        the server's `fork_rollouts`: the best of the trunk and its forks
    vote         the server's best-of-(1 + samples) with `greedy_first` and `select: "vote"`
    forks+vote   the vote with fork rollouts' pick in greedy's place (its forks' cost plus the samples')
    all-vote     the vote over the trunk, its forks and the samples
    all-pick     the head's best of the trunk, its forks and the samples

The rules were fixed before the replay was run; they are read on validation answers only, so that one of
them can go to a server row and the test problems afterwards.

    python -m sla_pipeline.analyses.combined_choice --bank bank/MODEL --head heads/MODEL/value-184 \
        [--score mean] [--samples 4] [--problems N] [--rewards CACHE.jsonl] [--json FILE]

Every answer goes once through the frozen backbone (`--rewards` keeps the head's per-token rewards, so a
rerun reads no model); prints each rule's accuracy, its gain over greedy with a paired 95 % interval, fixed /
broke, and the generated tokens per emitted token the rule would cost (every candidate it reads, over the
answer it returns).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from sla_engine.reward.weights import READOUTS
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.training.choices import Scorer, against_greedy, best_of_n_order, greedy_and, read, vote
from sla_pipeline.training.value_data import scored_length

RULES = ("forks", "vote", "forks+vote", "all-vote", "all-pick")


def voted(candidates: list[BankRecord], score: Scorer, limit: int) -> BankRecord:
    return vote(best_of_n_order(candidates, score, limit, prefer_finished=True))


def choose(trunk: BankRecord, forks: list[BankRecord], samples: list[BankRecord], score: Scorer,
           limit: int) -> dict[str, tuple[BankRecord, int]]:
    """Per rule, its answer and the tokens it generated to get there (a fork's shared prefix is not generated
    twice)."""
    pick = best_of_n_order([trunk, *forks], score, limit, prefer_finished=True)[0]
    fork_cost = trunk.tokens + sum(f.tokens - f.fork_at for f in forks)
    sample_cost = sum(s.tokens for s in samples)
    everything = [trunk, *forks, *samples]
    return {"forks": (pick, fork_cost),
            "vote": (voted([trunk, *samples], score, limit), trunk.tokens + sample_cost),
            "forks+vote": (voted([pick, *samples], score, limit), fork_cost + sample_cost),
            "all-vote": (voted(everything, score, limit), fork_cost + sample_cost),
            "all-pick": (best_of_n_order(everything, score, limit, prefer_finished=True)[0], fork_cost + sample_cost)}


def problems(records: Iterable[BankRecord], split: str,
             samples: int) -> list[tuple[BankRecord, list[BankRecord], list[BankRecord]]]:
    """(trunk, forks, the first `samples` samples) of every `split` problem with one trunk and that many
    samples (a trunk without forks had no uncertain point: fork rollouts answer greedy's text there)."""
    records = [r for r in records if r.split == split]
    forks = {trunk.id: found for trunk, found in greedy_and(records, "fork")}
    return [(trunk, forks.get(trunk.id, []), drawn[:samples]) for trunk, drawn in greedy_and(records, "sample")
            if len(drawn) >= samples]


def replay(found: list[tuple[BankRecord, list[BankRecord], list[BankRecord]]], score: Scorer,
           limit: int = 512) -> dict:
    """{"problems", "greedy", "oracle" (some answer right), RULE: {against_greedy's fields, "cost"}} ; only
    "problems" (0) without a problem."""
    if not found:
        return {"problems": 0}
    greedy = [trunk.correct for trunk, _, _ in found]
    chosen = [choose(trunk, forks, samples, score, limit) for trunk, forks, samples in found]
    result = {"problems": len(found), "greedy": sum(greedy) / len(greedy),
              "oracle": sum(any(r.correct for r in [t, *f, *s]) for t, f, s in found) / len(found)}
    for rule in RULES:
        answers = [c[rule] for c in chosen]
        cost = sum(n for _, n in answers) / sum(a.tokens for a, _ in answers)
        result[rule] = {**against_greedy([a.correct for a, _ in answers], greedy), "cost": cost}
    return result


def head_rewards(model: str, head_dir: Path, records: list[BankRecord], limit: int, cache: Path | None,
                 slice_size: int = 20) -> dict[str, list[float]]:
    """The head's reward at every scored position of each answer, read whole; with a `cache` (JSON Lines, one
    {answer id: rewards} per slice of problems) answers already there are not read again and new ones are
    appended a slice at a time, so an interrupted run resumes."""
    from transformers import AutoTokenizer

    from sla_engine.reward import RewardHead
    from sla_engine.store import ModelStore
    from sla_pipeline.bank.read import prompt_ids
    from sla_pipeline.training.features import frozen_backbone, rewards_of

    rewards: dict[str, list[float]] = {}
    if cache and cache.exists():
        for line in cache.read_text().splitlines():
            try:
                rewards |= json.loads(line)
            except json.JSONDecodeError:  # a slice cut off mid-write: its answers are read again
                continue
    todo = [r for r in records if r.id not in rewards]
    if not todo:
        return rewards
    model_path = ModelStore().resolve(model).path
    head = RewardHead.load_for(head_dir, model_path)
    prompts = prompt_ids(AutoTokenizer.from_pretrained(model_path), todo)
    backbone = frozen_backbone(model_path)
    items = list(dict.fromkeys(r.item for r in todo))
    for start in range(0, len(items), slice_size):
        part = set(items[start:start + slice_size])
        answers = {r.id: (r, scored_length(r, limit)) for r in todo if r.item in part}
        new = rewards_of(backbone, [head], answers, prompts)[0]
        rewards |= new
        if cache:
            with cache.open("a") as f:
                f.write(json.dumps(new) + "\n")
    return rewards


def main(argv: list[str] | None = None) -> int:
    from sla_engine.store import DEFAULT_MODEL
    from sla_pipeline.bank.read import read_bank

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", type=Path, required=True)
    parser.add_argument("--head", type=Path, required=True)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--score", choices=READOUTS, default="mean")
    parser.add_argument("--samples", type=int, default=4, help="samples per problem beside greedy [default 4]")
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--problems", type=int, help="only the first N such problems, in bank order")
    parser.add_argument("--rewards", type=Path, help="cache of the head's rewards (JSON Lines; reused and extended)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    limit = 512
    found = problems(read_bank(args.bank), args.split, args.samples)[:args.problems]
    records = [r for t, f, s in found for r in (t, *f, *s)]
    rewards = head_rewards(args.model, args.head, records, limit, args.rewards)
    result = replay(found, lambda answer, seen: read(rewards[answer.id], seen, args.score), limit)
    if not result["problems"]:
        print(f"{args.split}: no problem with greedy's answer and {args.samples} samples")
        return 1
    print(f"{args.split}: {result['problems']} problems, greedy {result['greedy']:.3f}, oracle {result['oracle']:.3f}")
    for rule in RULES:
        r = result[rule]
        print(f"  {rule:10s} {r['accuracy']:.3f}, {100 * r['gain']:+.1f} points [{100 * r['gain_ci95'][0]:+.1f}, "
              f"{100 * r['gain_ci95'][1]:+.1f}], fixed {r['fixed']} / broke {r['broke']}, p {r['p_value']:.3f}; "
              f"{r['cost']:.2f} generated per emitted")
    if args.json:
        args.json.write_text(json.dumps({"bank": str(args.bank), "head": str(args.head), "score": args.score,
                                         "samples": args.samples, **result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
