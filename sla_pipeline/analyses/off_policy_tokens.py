"""How far from the policy's own choices are a strategy's answers? For `sla eval` answers, the policy's
log-probability of every answer token given the prompt and the answer so far.

    python -m sla_pipeline.analyses.off_policy_tokens --answers runs/eval [--set gsm] [--limit 16] greedy sla-2-10-2 ...

Prints JSON per strategy: answer tokens, how many are not the policy's most likely token, and how many the
policy gives less than e^-5 (0.7 %) and e^-10 (0.005 %). Greedy's answers score 0 on all three (the check
that the re-tokenized text is what the engine produced); a search that forks into the top-n next tokens
commits the non-top ones when its reward prefers them. Answers are re-tokenized from their text, which can
split a few tokens differently from the engine's ids.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer

from sla_engine.store import ModelStore
from sla_pipeline.eval.sets import load_set
from sla_pipeline.training.features import frozen_backbone, tokenize


@torch.no_grad()
def answer_logprobs(model, tokenizer, messages: list[dict], text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per answer token: its log-probability under the policy, and whether it is the policy's argmax."""
    ids = tokenize(tokenizer, messages, text, max_response_tokens=sys.maxsize)  # as the server renders the prompt
    prompt_ids, answer_ids = list(ids.prompt_ids), torch.tensor(ids.response_ids)
    logits = model(torch.tensor([prompt_ids + answer_ids.tolist()])).logits[0, len(prompt_ids) - 1 : -1]
    log_p = logits.float().log_softmax(-1)
    return log_p[torch.arange(len(answer_ids)), answer_ids], log_p.argmax(-1) == answer_ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--answers", type=Path, required=True, help="an `sla eval --out` folder")
    ap.add_argument("--set", default="gsm")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="the policy that wrote the answers")
    ap.add_argument("--limit", type=int, default=None, help="the first answers of each strategy")
    ap.add_argument("strategies", nargs="+")
    args = ap.parse_args()

    path = ModelStore().resolve(args.model).path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = frozen_backbone(path)
    items = {it.id: it for it in load_set(args.set, None).items}
    for name in args.strategies:
        lines = (args.answers / "answers" / name / f"{args.set}.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines][: args.limit]
        totals = dict(answers=len(rows), tokens=0, not_top=0, below_e_minus_5=0, below_e_minus_10=0)
        for row in rows:
            lp, top = answer_logprobs(model, tokenizer, list(items[row["item"]].messages), row["text"])
            totals["tokens"] += len(lp)
            totals["not_top"] += int((~top).sum())
            totals["below_e_minus_5"] += int((lp < -5).sum())
            totals["below_e_minus_10"] += int((lp < -10).sum())
        print(json.dumps({"strategy": name, **totals}), flush=True)


if __name__ == "__main__":
    main()
