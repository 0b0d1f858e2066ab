"""How much of a GSM answer's outcome is decided where SLA(2,10,2) stops reading? The value a head is trained
toward, measured directly.

On the bank's validation sibling pairs (a trunk and a fork, one right and one wrong), both answers are cut
`lookahead` tokens past where they part — what SLA(2,10,2) reads — and the policy continues each prefix
`rollouts` times at the bank's sampling settings (temperature 0.7, top-k 20, up to 512 answer tokens in all).
A prefix's Monte-Carlo value is the share of its continuations that end right: the prefix-success rate a
value head is trained toward (TVM, arXiv 2407.12863), estimated by drawing instead of learned. The pair is
ranked right when the right sibling's prefix has the higher value (a tie counts half); the accuracy with the
first 1, 2, … draws shows how far more draws would take it. If the policy's own continuations cannot tell the
two prefixes apart, a head trained on them cannot either, and SLA at this look-ahead has nothing to find.

    python -m sla_pipeline.analyses.prefix_value --bank bank/MODEL --rollouts 4 [--lookahead 30] \
        [--pairs N] [--draws FILE.jsonl] [--json FILE]

Every draw is appended to `--draws` as it is made (text, token ids, seed, outcome), so a stopped run
resumes and nothing drawn is drawn again; `--pairs` takes the first N pairs in bank order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind

from sla_engine.engine import Engine
from sla_pipeline.bank.pairs import AnswerPair, sibling_pairs
from sla_pipeline.bank.problems import items_by_id
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.data import gsm
from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.data.sampling import item_seed
from sla_pipeline.data.sources import Item
from sla_pipeline.eval.stats import bootstrap_ci

TEMPERATURE, TOP_K, MAX_TOKENS = 0.7, 20, 512  # the bank's samples (bank/grow.py's GrowPlan.sampling)
SIDES = ("right", "wrong")


def prefix(pair: AnswerPair, side: str, lookahead: int) -> tuple[int, ...]:
    answer = pair.right if side == "right" else pair.wrong
    return answer.token_ids[:min(answer.tokens, pair.parting + lookahead)]


def draw_key(pair: AnswerPair, side: str, lookahead: int) -> str:
    return f"{(pair.right if side == 'right' else pair.wrong).id}|{side}|{lookahead}"


async def continue_prefix(engine: Engine, messages, ids: tuple[int, ...], answer: float, n: int,
                          seed: int, start: int = 0, max_tokens: int = MAX_TOKENS) -> list[dict]:
    """`n` continuations of the answer prefix `ids` (to `max_tokens` answer tokens in all), each graded whole
    (prefix and continuation), indexed from `start` (a rerun with more rollouts draws only the missing ones, with their own seed)."""
    params = SamplingParams(n=n, temperature=TEMPERATURE, top_k=TOP_K, max_tokens=max(1, max_tokens - len(ids)),
                            seed=seed, output_kind=RequestOutputKind.FINAL_ONLY)
    async for result in engine.generate(engine.chat_prompt_ids(messages) + list(ids), params):
        pass
    draws = []
    for c in result.outputs:
        text = engine.tokenizer.decode(list(ids) + list(c.token_ids), skip_special_tokens=True)
        draws.append({"index": start + c.index, "seed": seed, "prefix_tokens": len(ids), "token_ids": list(c.token_ids),
                      "text": text, "finish_reason": c.finish_reason, "given": gsm.extract_answer(text),
                      "correct": gsm.is_correct(text, answer)})
    return draws


def value(entry: dict, first: int) -> float:
    """A prefix's Monte-Carlo value from its first `first` draws; an answer that ends inside the look-ahead is
    read whole ("finished": its own outcome), as SLA reads a finished leaf."""
    if entry["finished"] is not None:
        return float(entry["finished"])
    chosen = sorted(entry["draws"], key=lambda d: d["index"])[:first]
    return sum(d["correct"] for d in chosen) / len(chosen)


def drawn(entry: dict | None) -> int:
    return 0 if entry is None else 1 << 30 if entry["finished"] is not None else len(entry["draws"])


def accuracy(pairs: list[AnswerPair], draws: dict[str, dict], lookahead: int, first: int) -> dict:
    """Pairs ranked by the prefixes' Monte-Carlo values from each side's first `first` draws."""
    outcomes, groups = [], []
    for p in pairs:
        right, wrong = (value(draws[draw_key(p, s, lookahead)], first) for s in SIDES)
        outcomes.append(1.0 if right > wrong else 0.5 if right == wrong else 0.0)
        groups.append(p.item)
    return {"draws": first, "pairs": len(pairs), "accuracy": sum(outcomes) / len(outcomes),
            "ci95": bootstrap_ci(outcomes, groups=groups), "ties": sum(o == 0.5 for o in outcomes)}


def summary(pairs: list[AnswerPair], draws: dict[str, dict], rollouts: int, lookahead: int) -> dict:
    done = [p for p in pairs if all(drawn(draws.get(draw_key(p, s, lookahead))) >= rollouts for s in SIDES)]
    if not done:
        return {"lookahead": lookahead, "rollouts": rollouts, "pairs": 0}
    values = {s: [value(draws[draw_key(p, s, lookahead)], rollouts) for p in done] for s in SIDES}
    by_draws = [accuracy(done, draws, lookahead, k) for k in sorted({1, 2, 4, 8, 16, rollouts}) if k <= rollouts]
    return {"lookahead": lookahead, "rollouts": rollouts, "pairs": len(done), "problems": len({p.item for p in done}),
            "mean_value": {s: sum(v) / len(v) for s, v in values.items()},
            "finished_in_window": sum(draws[draw_key(p, s, lookahead)]["finished"] is not None
                                      for p in done for s in SIDES),
            "lookahead_accuracy": by_draws[-1]["accuracy"], "lookahead_ci95": by_draws[-1]["ci95"],
            "by_draws": by_draws}


async def draw_all(model: str, pairs: list[AnswerPair], items: dict[str, Item], rollouts: int, lookahead: int,
                   out: Path) -> None:
    """Draws what `out` lacks of every pair's continuations; `items`: the problems by id."""
    from sla_pipeline.engines import running_engine

    have = read_draws(out)
    todo = [(p, s) for p in pairs for s in SIDES if drawn(have.get(draw_key(p, s, lookahead))) < rollouts]

    async def one(task: tuple[AnswerPair, str]) -> list[dict]:
        pair, side = task
        key, ids = draw_key(pair, side, lookahead), prefix(pair, side, lookahead)
        answer = pair.right if side == "right" else pair.wrong
        line = {"key": key, "item": pair.item, "side": side, "lookahead": lookahead, "finished": None, "draws": []}
        if len(ids) == answer.tokens and answer.finish_reason == "stop":
            return [{**line, "finished": answer.correct}]
        start = drawn(have.get(key))
        line["draws"] = await continue_prefix(engine, items[pair.item].messages, ids, answer.answer,
                                              rollouts - start, item_seed(key, 0, start), start)
        return [line]

    async with running_engine(model, max_model_len=2048, kv_cache_gib=1.25) as engine:
        await run_resumable(todo, one, out, total=2 * len(pairs), concurrency=8, desc="prefix rollouts",
                            unit="prefix")


def read_draws(path: Path) -> dict[str, dict]:
    """Per prefix {"finished": its outcome if the answer ends inside the look-ahead, else None; "draws": [...]},
    the lines of one prefix merged (a rerun with more rollouts appends another)."""
    entries: dict[str, dict] = {}
    for r in read_jsonl(path, dict):
        entry = entries.setdefault(r["key"], {"finished": r["finished"], "draws": []})
        entry["draws"] += r["draws"]
    return entries


def validation_siblings(records: list[BankRecord], count: int | None) -> list[AnswerPair]:
    return sibling_pairs(r for r in records if r.split == "heldout")[:count]


def main(argv: list[str] | None = None) -> int:
    from sla_engine.store import DEFAULT_MODEL
    from sla_pipeline.training.value import read_bank

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", type=Path, required=True)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--rollouts", type=int, default=4, help="continuations per prefix [default 4]")
    parser.add_argument("--lookahead", type=int, default=30, help="tokens past the fork [default 30: SLA(2,10,2)]")
    parser.add_argument("--pairs", type=int, help="only the first N validation sibling pairs, in bank order")
    parser.add_argument("--draws", type=Path, default=Path("runs/prefix-value.jsonl"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.rollouts < 1 or args.lookahead < 1:
        parser.error("--rollouts and --lookahead must be at least 1")
    records = read_bank(args.bank)
    pairs = validation_siblings(records, args.pairs)
    items = items_by_id({r.item for r in records if r.split == "heldout"})  # a list's first problems, all of them
    asyncio.run(draw_all(args.model, pairs, items, args.rollouts, args.lookahead, args.draws))
    result = summary(pairs, read_draws(args.draws), args.rollouts, args.lookahead)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"bank": str(args.bank), **result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
