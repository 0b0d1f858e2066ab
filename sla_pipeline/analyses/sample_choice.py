"""Are best-of-N's samples any good, and does the head pick the right one? On held-out GSM-symbolic problems
(`sla eval`'s set, same prompts and seeds), the server's best-of-N search runs on the engine without pruning
and *every* sample it drew is kept, with its mean token reward and whether its final number is right.

    python -m sla_pipeline.analyses.sample_choice --head heads/qwen2.5-coder-0.5b-instruct/bradley-terry --out
    runs/sample-choice/k0.jsonl \
        [--n 4 --temperature 0.7 --top-k 0] [--gsm 200 --limit 100] [--concurrency 8] [--max-tokens 512] \
        [--greedy runs/eval/answers/greedy/gsm.jsonl] [--first runs/sample-choice/greedy.jsonl] [--report R.json] \
        [--pairs runs/sample-choice/pairs.jsonl]

The greedy answers with their rewards: `--n 1 --greedy-first --out runs/sample-choice/greedy.jsonl`. The
greedy answer takes no seed, so `--first` that file with `--out` a run of n samples gives exactly the
candidates best-of-N draws with `greedy_first` and n + 1 samples.

Resumable: one line per problem in --out (settings in OUT.settings.json; a run asking other settings of
the same file is refused). Prints JSON: the accuracy of a random sample (`sample`), of the head's pick
(`head`: best-of-N's answer; `head_last`: the pick by the reward at the last token instead of the mean),
of a majority vote over the final numbers and of a perfect chooser (`oracle`, pass@n); on problems whose
samples disagree, how often the head ranks a right sample above a wrong one (`pairs`, `pairs_last`);
samples cut at the token limit and how often the head picked one; and, with --greedy (an `sla eval`
answers file), each pick against greedy problem by problem (fixed, broken, sign test).

--pairs writes those right-vs-wrong pairs with their texts as a pairs file: `sla score-pairs --pairs FILE
--max-response-tokens 512` then scores any other head on exactly the choices best-of-N faced, without
drawing the samples again (the policy is frozen, so a new head changes the scores, never the samples).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from sla_engine.engine import Engine, EngineConfig
from sla_engine.search import BestOfNConfig
from sla_engine.search.best_of_n import BestOfN
from sla_engine.search.ranking import by_score, majority, ranked
from sla_engine.store import ModelStore
from sla_pipeline.data.gsm import extract_answer, is_correct
from sla_pipeline.data.jsonl import JsonlWriter, read_jsonl
from sla_pipeline.data.pairs import Pair
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.data.sampling import item_seed
from sla_pipeline.data.sources import Item
from sla_pipeline.eval.generation import Generation, check_settings
from sla_pipeline.eval.sets import load_set
from sla_pipeline.eval.stats import Accuracy, PairedGain


@dataclass(frozen=True)
class Drawn:
    """One sample as the analysis sees it."""

    right: bool
    value: float | None  # its final number
    reward: float  # mean token reward, best-of-N's score
    last: float  # the reward at its last token (of the whole answer)
    cut: bool  # stopped by the token limit


def pick(samples: list[Drawn], score: str = "reward") -> int:
    """The highest `score` ("reward": best-of-N's choice; "last"), the first drawn among equals."""
    return min(range(len(samples)), key=lambda i: (-getattr(samples[i], score), i))


def vote(samples: list[Drawn]) -> int:
    """Majority vote over final numbers (samples without one do not vote); a tie goes to the value whose best
    sample the head scores higher — best-of-N's `select: "vote"` (`majority`). Returns the index of that best
    sample (the head's pick if nobody votes)."""
    order = sorted(range(len(samples)), key=lambda i: (-samples[i].reward, i))
    return majority(order, [samples[i].value for i in order])


def pair_ranking(mixed: list[list[Drawn]], score: str) -> dict:
    """Over every (right, wrong) pair of samples of the same problem: how often the right one scores higher."""
    above = ties = total = 0
    for p in mixed:
        for r in (getattr(s, score) for s in p if s.right):
            for w in (getattr(s, score) for s in p if not s.right):
                total += 1
                above += r > w
                ties += r == w
    return {"right_vs_wrong": total, "right_above": above, "tied": ties,
            "accuracy": (above + ties / 2) / total if total else None}


def choice_report(problems: list[list[Drawn]], greedy: list[bool] | None = None) -> dict:
    """Per problem its samples in draw order; `greedy`: greedy's verdict on the same problems."""
    if not problems:
        raise ValueError("no problems")
    chosen = [p[pick(p)] for p in problems]  # best-of-N's answer
    picks = {"head": [s.right for s in chosen], "head_last": [p[pick(p, "last")].right for p in problems],
             "vote": [p[vote(p)].right for p in problems], "oracle": [any(s.right for s in p) for p in problems]}
    mixed = [i for i, p in enumerate(problems) if any(s.right for s in p) and not all(s.right for s in p)]
    samples = [s for p in problems for s in p]
    report = {
        "problems": len(problems), "samples": len(samples),
        "sample": sum(s.right for s in samples) / len(samples),  # a random pick's expected accuracy
        **{name: asdict(Accuracy.of(right)) for name, right in picks.items()},
        "mixed_problems": len(mixed),
        "head_on_mixed": sum(chosen[i].right for i in mixed),
        "sample_on_mixed": round(sum(sum(s.right for s in problems[i]) / len(problems[i]) for i in mixed), 6),
        "pairs": pair_ranking([problems[i] for i in mixed], "reward"),
        "pairs_last": pair_ranking([problems[i] for i in mixed], "last"),
        "cut": sum(s.cut for s in samples), "head_picked_cut": sum(s.cut for s in chosen),
    }
    if greedy is not None:
        report["greedy"] = asdict(Accuracy.of(greedy))
        report.update({f"{name}_vs_greedy": asdict(PairedGain.of(right, greedy)) for name, right in picks.items()})
    return report


async def draw(engine: Engine, item: Item, config: BestOfNConfig, max_tokens: int) -> list[dict]:
    prompt = engine.chat_prompt_ids(list(item.messages))
    search = BestOfN(engine, prompt, config, max_tokens, request_id=f"choice-{item.id}",
                     seed=item_seed(item.id, 0) % (1 << 31))  # the seed `sla eval` sends
    async for _ in search.commits():
        pass
    samples = []
    for s in search.samples:
        text = engine.tokenizer.decode(s.tokens, skip_special_tokens=True)
        samples.append({"text": text, "finish_reason": s.finish_reason, "tokens": len(s.tokens),
                        "mean_reward": s.mean_reward, "rewards": [round(r, 4) for r in s.rewards],
                        "right": is_correct(text, item.answer),
                        "value": extract_answer(text)})
    assert search.samples.index(ranked(search.samples, by_score())[0]) == pick([as_drawn(s) for s in samples])
    return [{"item": item.id, "samples": samples}]


def as_drawn(s: dict) -> Drawn:
    last = s["rewards"][-1] if s["rewards"] else float("-inf")
    return Drawn(bool(s["right"]), s["value"], float(s["mean_reward"]), last, s["finish_reason"] == "length")


def in_order(found: dict, items: list[Item], path: Path, what: str) -> list:
    """`found[item id]` for each of `items`; exits naming `path` if any is missing."""
    missing = [it.id for it in items if it.id not in found]
    if missing:
        sys.exit(f"{path} has no {what} for {len(missing)} of these problems (e.g. {missing[0]})")
    return [found[it.id] for it in items]


def read_samples(path: Path, items: list[Item]) -> list[list[dict]]:
    """The samples (as `draw` wrote them) of each of `items` in a --out file."""
    return in_order({r["item"]: r["samples"] for r in read_jsonl(path, lambda r: r)}, items, path, "samples")


def sample_pairs(item: Item, samples: list[dict]) -> list[Pair]:
    """Every (right, wrong) pair among one problem's samples (ids name their places among the candidates): the
    pairs `pairs` counts, in the training pairs' format, so `sla score-pairs` can score any head on them."""
    return [Pair(f"{item.id}#{i}>{j}", "gsm", item.id, item.split, item.messages, r["text"], w["text"],
                 {"method": "gsm_answer", "answer": item.answer, "rejected_answer": w["value"]})
            for i, r in enumerate(samples) if r["right"] for j, w in enumerate(samples) if not w["right"]]


async def sample_all(args: argparse.Namespace, items: list[Item], config: BestOfNConfig) -> None:
    done = {r["item"] for r in read_jsonl(args.out, lambda r: r)}
    todo = [it for it in items if it.id not in done]
    if not todo:
        return
    model = ModelStore().resolve(args.model)
    engine = await Engine.start(EngineConfig(model_path=str(model.path), served_name=model.name,
                                             reward_head=str(args.head), max_model_len=args.max_model_len))
    try:
        await run_resumable(todo, lambda it: draw(engine, it, config, args.max_tokens), args.out,
                            total=len(items), concurrency=args.concurrency, desc="problems", unit="problem")
    finally:
        engine.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--head", type=Path, required=True, help="the reward head the engine serves")
    ap.add_argument("--out", type=Path, required=True, help="JSONL of every problem's samples (resumable)")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-k", type=int, default=0, help="0: the whole vocabulary [default]")
    ap.add_argument("--greedy-first", action="store_true", help="the first sample is the greedy answer")
    ap.add_argument("--gsm", type=int, default=200, help="the held-out set's size, as `sla eval --gsm`")
    ap.add_argument("--limit", type=int, help="only its first N problems")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--concurrency", type=int, default=8, help="problems in flight, n samples each")
    ap.add_argument("--greedy", type=Path, help="an `sla eval` answers file (answers/greedy/gsm.jsonl)")
    ap.add_argument("--report", type=Path, help="also write the JSON here (vLLM logs to stdout too)")
    ap.add_argument("--first", type=Path, help="another --out file of the same problems (e.g. drawn with --n 1 "
                    "--greedy-first): its samples go first among each problem's candidates")
    ap.add_argument("--pairs", type=Path, help="also write every (right, wrong) pair of candidates here, a pairs "
                    "file for `sla score-pairs`")
    args = ap.parse_args()

    config = BestOfNConfig(n=args.n, temperature=args.temperature, top_k=args.top_k,
                           greedy_first=args.greedy_first, prune_at=0)
    items = list(load_set("gsm", args.gsm).items[: args.limit])
    check_settings(args.out.with_name(args.out.name + ".settings.json"),
                   {"head": str(args.head), "model": args.model, "search": config.as_dict(),
                    "max_tokens": args.max_tokens, "gsm": args.gsm})
    asyncio.run(sample_all(args, items, config))

    candidates = read_samples(args.out, items)
    if args.first:
        candidates = [first + drawn for first, drawn in zip(read_samples(args.first, items), candidates)]
    problems = [[as_drawn(s) for s in p] for p in candidates]
    if args.pairs:
        args.pairs.unlink(missing_ok=True)
        with JsonlWriter(args.pairs) as w:
            for item, samples in zip(items, candidates):
                for pair in sample_pairs(item, samples):
                    w.write(pair.to_json())
    greedy = None
    if args.greedy:
        answers = in_order({g.item: g for g in read_jsonl(args.greedy, Generation.from_json)}, items, args.greedy,
                           "greedy answer")
        greedy = [is_correct(a.text, it.answer) for a, it in zip(answers, items)]  # as `sla eval` counts it
    report = json.dumps({"search": config.as_dict(), "first": args.first and str(args.first),
                         "head_dir": str(args.head), **choice_report(problems, greedy)}, indent=2)
    print(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report + "\n")


if __name__ == "__main__":
    main()
