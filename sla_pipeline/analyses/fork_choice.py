"""Would the head, choosing among *finished* siblings, beat greedy? On the GSM problems of a `sla data`
forks file: the greedy trunk and its forks' answers (one deviation each, rolled out greedily to the end);
the head scores each whole answer by its mean token reward (best-of-N's score) and picks the highest.

    python -m sla_pipeline.analyses.fork_choice --data runs/forks --head
    heads/qwen2.5-coder-0.5b-instruct/bradley-terry [--split heldout]

Prints JSON: problems, how many the head had to decide ("disagree": some answers right, some wrong; only
those are scored), right answers for greedy (the trunk), the head's pick and a perfect chooser, the problems
the pick fixed and broke against the trunk, and the sign test's p on those two counts. An
answer cut at the token limit gives no final number and counts as wrong. Where SLA scores siblings (d + 1) x k
tokens past the fork (`sla score-pairs --lookahead`), this scores them at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from sla_engine.reward import RewardHead
from sla_engine.store import ModelStore
from sla_pipeline.data.build import DataPlan
from sla_pipeline.data.forks import read_forks
from sla_pipeline.data.gsm import is_correct
from sla_pipeline.eval.stats import sign_test_p
from sla_pipeline.training.features import FeatureCache, tokenize
from sla_pipeline.training.losses import masked_mean
from sla_pipeline.training.trainer import rewards


def choice_counts(problems: list[list[tuple[bool, float | None]]]) -> dict[str, int]:
    """Per problem its candidates (right, head score), the greedy trunk first; scores only where they disagree."""
    counts = {"problems": len(problems), "disagree": 0, "greedy": 0, "head": 0, "perfect": 0,
              "head_fixed": 0, "head_broke": 0}  # the head's pick right where the trunk is wrong, and the reverse
    for candidates in problems:
        right = [r for r, _ in candidates]
        counts["greedy"] += right[0]
        counts["perfect"] += any(right)
        if all(right) or not any(right):
            counts["head"] += right[0]
            continue
        counts["disagree"] += 1
        best = max(range(len(candidates)), key=lambda i: (candidates[i][1], -i))  # ties: the earlier, greedy first
        counts["head"] += right[best]
        counts["head_fixed"] += right[best] and not right[0]
        counts["head_broke"] += right[0] and not right[best]
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a `sla data` folder with forks/gsm.jsonl and plan.json")
    ap.add_argument("--head", type=Path, required=True)
    ap.add_argument("--split", choices=("train", "heldout", "all"), default="heldout")
    ap.add_argument("--features", type=Path, help="backbone feature cache [default DATA/features/MODEL]")
    ap.add_argument("--max-response-tokens", type=int, default=1024, help="whole answers [default %(default)s]")
    args = ap.parse_args()

    plan = json.loads((args.data / "plan.json").read_text())
    model = ModelStore().resolve(plan["policy"])
    items = {it.id: it for it in DataPlan(args.data, math_prompts=plan["math_prompts"],
                                          math_heldout=plan["math_heldout"]).math_items()}
    forked = read_forks(args.data / "forks" / "gsm.jsonl")
    chosen = [p for p in forked.values() if p.item in items and args.split in ("all", items[p.item].split)]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model.path)
    problems, to_score = [], []
    for p in chosen:
        item = items[p.item]
        answers = [p.trunk] + [a for _, a in p.forks]
        right = [a.finish_reason == "stop" and is_correct(a.text, item.answer) for a in answers]
        problems.append([(r, None) for r in right])
        if any(right) and not all(right):
            to_score.append((len(problems) - 1, [tokenize(tokenizer, item.messages, a.text, args.max_response_tokens)
                                                 for a in answers]))
    seqs = [s for _, group in to_score for s in group]
    cache = FeatureCache(args.features or args.data / "features" / model.name).complete(model.path, seqs)
    channel = RewardHead.load_for(args.head, model.path).channel()
    for index, group in to_score:
        with torch.no_grad():
            r, mask = rewards(channel, cache, group, [None] * len(group))
        means = masked_mean(r, mask).tolist()
        problems[index] = [(right, m) for (right, _), m in zip(problems[index], means)]
    counts = choice_counts(problems)
    json.dump({"split": args.split, "head_dir": str(args.head), **counts,
               "sign_test_p": sign_test_p(counts["head_fixed"], counts["head_broke"])}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
