"""`sla train`, `sla calibrate` and `sla score-pairs`: reward heads on a frozen policy."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import get_args

from sla_engine.store import DEFAULT_MODEL
from sla_pipeline.cli_args import comma_list
from sla_pipeline.training.config import BankProblems, RolloutUse, TrainConfig


def add_parser(sub) -> None:
    train = sub.add_parser("train", help="train a reward head (frozen policy): on preference pairs, or a value head "
                                         "on the sample bank (--loss value)",
                           description="Trains the reward channel + head of a frozen policy on `sla data` pairs "
                                       "(--data) and writes OUT/reward_head.{json,safetensors} plus "
                                       "OUT/report.{json,png}; with --loss value, a value head on the sample "
                                       "bank's labelled answers (--bank; docs/reward-head.md, \"Value heads\").")
    train.add_argument("--model", default=DEFAULT_MODEL,
                       help="policy: packaged name or local folder [default %(default)s]")
    train.set_defaults(run=train_command)
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path,
                        help="folder with pairs/train.jsonl and pairs/heldout.jsonl (the output of `sla data`)")
    source.add_argument("--bank", type=Path, help="the sample bank (--loss value), e.g. bank/MODEL")
    train.add_argument("--out", type=Path, required=True, help="folder for the head and its report")
    train.add_argument("--features", type=Path,
                       help="backbone feature cache [default: DATA/features/MODEL, runs/features/MODEL with --bank]")
    train.add_argument("--init", type=Path,
                       help="train on from this head (same kind and width) instead of from scratch")
    train.add_argument("--problems", choices=get_args(BankProblems), default=TrainConfig.problems,
                       help="--loss value: the train problems whose answers train: those with both a right and a "
                            "wrong answer, all, or those with a sibling pair (where the rollouts are) "
                            "[default %(default)s]")
    train.add_argument("--rollouts", choices=get_args(RolloutUse), default=TrainConfig.rollouts,
                       help="--loss value: the bank's rollouts label the prefixes they continue and train as "
                            "answers past them (all), only label them (labels: no backbone pass over them), or "
                            "are left out (none) [default %(default)s]")
    defaults = TrainConfig()
    for name, kind in (("loss", str), ("head", str), ("width", int), ("lr", float), ("epochs", int),
                       ("batch_size", int), ("warmup", float), ("weight_decay", float),
                       ("max_response_tokens", int), ("seed", int), ("save_dtype", str), ("stride", int)):
        train.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(defaults, name),
                           help="[default %(default)s]")
    train.add_argument("--pair-weight", type=float, default=defaults.pair_weight,
                       help="--loss value: weight of a Bradley-Terry term on train siblings 10, 20 and 30 tokens past "
                            "their fork (needs train forks in the bank) [default %(default)s]")
    train.add_argument("--candidate-weight", type=float, default=defaults.candidate_weight,
                       help="--loss value: weight of a Bradley-Terry term on train candidate pairs (a right and a "
                            "wrong whole answer of one problem, read by --readout) [default %(default)s]")
    train.add_argument("--consistency-weight", type=float, default=defaults.consistency_weight,
                       help="--loss value: weight of a temporal-difference term pulling each position's output "
                            "toward the value at the answer's next kept position [default %(default)s]")
    train.add_argument("--domains", type=comma_list, default=",".join(defaults.domains),
                       help="--loss value: comma-separated domains whose bank answers train and validate (gsm, mbpp, "
                            "ifeval); the report scores the validation choices per domain too [default %(default)s]")
    train.add_argument("--max-problems", type=int, metavar="N",
                       help="--loss value: per domain, only the first N of those train problems train (the backbone "
                            "pass over their answers is the cost) [default: all]")
    train.add_argument("--readout", choices=("last", "mean"), default=defaults.readout,
                       help="--loss value: the read-out the head declares and its epochs are scored by "
                            "[default %(default)s]")
    train.add_argument("--keep-by", choices=("siblings", "candidates"), default=defaults.keep_by,
                       help="--loss value: keep the epoch that ranks the validation siblings (SLA's choice) or "
                            "best-of-N's candidates best [default %(default)s]")
    train.add_argument("--no-candidates", action="store_true",
                       help="--loss value: validate on the siblings alone, not also on best-of-N's candidates "
                            "(their whole answers are ~40 %% of the backbone pass)")
    train.add_argument("--lookahead", type=int, metavar="N",
                       help="the loss and held-out metrics see each pair only N tokens past where its responses part "
                            "(SLA's view of siblings: (depth + 1) x chunk) [default: whole responses; with --loss "
                            "value, the validation siblings' view, default 30]")

    cal = sub.add_parser("calibrate", help="standardize an existing head's rewards on the policy's own answers",
                         description="Measures the head's per-token reward on the policy's answers among the "
                                     "training pairs (--data; sources gsm, gsm_fork, alpaca) or on the sample bank's "
                                     "train-side greedy answers and samples (--bank) and folds (r - mean) / std into "
                                     "the head, rewriting HEAD in place; rankings are unchanged. `sla train` does "
                                     "this itself for a preference head.")
    cal.set_defaults(run=calibrate_command)
    cal.add_argument("head", type=Path, help="folder with reward_head.{json,safetensors}")
    cal.add_argument("--model", default=DEFAULT_MODEL,
                     help="policy: packaged name or local folder [default %(default)s]")
    source = cal.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder with pairs/train.jsonl (the output of `sla data`)")
    source.add_argument("--bank", type=Path, help="the sample bank, e.g. bank/MODEL (its train-side answers)")
    cal.add_argument("--problems", type=int, default=40,
                     help="--bank: each domain's first N train-side problems' answers [default %(default)s]")
    cal.add_argument("--domains", type=comma_list, default="gsm",
                     help="--bank: comma-separated domains the head serves, as it was trained (gsm, mbpp, ifeval) "
                          "[default %(default)s]")
    cal.add_argument("--features", type=Path, help="--data: backbone feature cache [default: DATA/features/MODEL]")
    cal.add_argument("--max-response-tokens", type=int, default=TrainConfig().max_response_tokens,
                     help="as the head was trained with [default %(default)s]")

    score = sub.add_parser("score-pairs", help="how well a head makes a search's choices: on a pairs file, or on the "
                                               "sample bank's validation siblings and candidates (--bank)",
                           description="With --pairs: scores both answers of every pair with the head (frozen policy "
                                       "features, cached) and prints pair accuracy with a bootstrap 95%% interval and "
                                       "AuTRC per source, e.g. gsm_fork (sibling answers, SLA's choice) against gsm. "
                                       "With --bank: the bank's sibling pairs as SLA sees them (--lookahead, default "
                                       "30) and best-of-N's candidate pairs, under both read-outs, for HEAD (and "
                                       "--compare), intervals bootstrapped over problems.")
    score.set_defaults(run=score_pairs_command)
    score.add_argument("head", type=Path, help="folder with reward_head.{json,safetensors}")
    source = score.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", type=Path, help="a pairs file, e.g. DATA/pairs/heldout.jsonl")
    source.add_argument("--bank", type=Path, help="the sample bank, e.g. bank/MODEL (its validation answers)")
    score.add_argument("--model", default=DEFAULT_MODEL,
                       help="policy: packaged name or local folder [default %(default)s]")
    score.add_argument("--features", type=Path, help="backbone feature cache, e.g. DATA/features/MODEL (--pairs only)")
    score.add_argument("--max-response-tokens", type=int, default=TrainConfig().max_response_tokens,
                       help="responses are cut here, as in training [default %(default)s]")
    score.add_argument("--lookahead", type=int, metavar="N",
                       help="also score each pair as SLA sees it: both responses cut N tokens past where they part "
                            "(SLA's (depth + 1) x chunk, 30 for its defaults)")
    score.add_argument("--curve", type=look_aheads, default=(), metavar="N,N,...",
                       help="--bank: also score the siblings at these look-aheads ('all': whole answers), e.g. "
                            "10,60,120,all: how far past the fork a search must read before the head tells them apart")
    score.add_argument("--compare", type=Path, metavar="HEAD",
                       help="another head scored on the same pairs: pairs only one of the two ranks right, and the "
                            "accuracy gain with a 95%% interval bootstrapped over items")
    score.add_argument("--domains", type=comma_list, default="gsm",
                       help="--bank: comma-separated domains whose validation answers are scored, together (gsm, "
                            "mbpp, ifeval) [default %(default)s]")
    score.add_argument("--json", type=Path, help="also write the result here")


def look_aheads(text: str) -> tuple[int | None, ...]:
    values = tuple(None if v.strip() == "all" else int(v) for v in text.split(","))
    if any(v is not None and v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"look-aheads are positive token counts or 'all': {text}")
    return values


def train_command(args: argparse.Namespace) -> int:
    from sla_engine.store import ModelStore
    from sla_pipeline.training.trainer import train as run_training

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TrainConfig(loss=args.loss, head=args.head, width=args.width, lr=args.lr, epochs=args.epochs,
                         batch_size=args.batch_size, warmup=args.warmup, weight_decay=args.weight_decay,
                         max_response_tokens=args.max_response_tokens, seed=args.seed, save_dtype=args.save_dtype,
                         lookahead=args.lookahead, stride=args.stride, pair_weight=args.pair_weight,
                         consistency_weight=args.consistency_weight, candidate_weight=args.candidate_weight,
                         readout=args.readout, keep_by=args.keep_by,
                         validate_candidates=not args.no_candidates, problems=args.problems,
                         rollouts=args.rollouts, domains=args.domains,
                         max_problems=args.max_problems)
    model = ModelStore().resolve(args.model)
    if (args.loss == "value") != (args.bank is not None):
        raise ValueError("--loss value trains on the sample bank (--bank); the pair losses on --data")
    if args.bank is not None:
        from sla_pipeline.training.value import train_on_bank

        report = train_on_bank(model.path, model.name, args.bank, args.out, config,
                               args.features or Path("runs") / "features" / model.name, args.init)
        s, c = report["final"]["siblings"], report["final"]["candidates"]
        print(f"{args.out}: epoch {report['kept_epoch']} (kept by {config.keep_by}, {config.readout} read-out): "
              f"validation siblings {s['accuracy']} ({s['pairs']} pairs, "
              f"{s['lookahead']} tokens past the fork; keeps the trunk in {s['trunk_chosen']}, always keeping it "
              f"{report['keep_trunk']['accuracy']}), candidates {c['accuracy']} ({c['pairs']} pairs)")
        for domain, d in report["final"]["by_domain"].items():
            print(f"  {domain}: siblings {d['siblings']['accuracy']} ({d['siblings']['pairs']} pairs), "
                  f"candidates {d['candidates']['accuracy']} ({d['candidates']['pairs']} pairs)")
        return 0
    report = run_training(model.path, model.name, args.data / "pairs" / "train.jsonl",
                          args.data / "pairs" / "heldout.jsonl",
                   args.out, config, cache_dir=args.features or args.data / "features" / model.name, init=args.init)
    final = report["final"]
    print(f"{args.out}: pair accuracy {final['pair_accuracy']:.3f}, AuTRC {final['autrc']:.3f} on "
          f"{report['pairs']['heldout']} held-out pairs ({report['timing_s']['total']:.0f} s)")
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    from sla_engine.store import ModelStore
    from sla_pipeline.training.calibration import calibrate_head

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = ModelStore().resolve(args.model)
    if args.bank is not None:
        from transformers import AutoTokenizer

        from sla_pipeline.bank.read import prompt_ids, read_bank
        from sla_pipeline.training.calibration import bank_answers, calibrate_on_bank

        answers = bank_answers(read_bank(args.bank, domains=args.domains), args.problems)
        prompts = prompt_ids(AutoTokenizer.from_pretrained(model.path), answers)
        c = calibrate_on_bank(model.path, args.head, answers, prompts)
    else:
        c = calibrate_head(model.path, args.head, args.data / "pairs" / "train.jsonl",
                           args.features or args.data / "features" / model.name, args.max_response_tokens)
    print(f"{args.head}: served reward = (raw - mean) / std, mean {c.mean:.4f}, std {c.std:.4f} "
          f"(measured on {c.tokens} tokens)")
    return 0


def score_pairs_command(args: argparse.Namespace) -> int:
    from sla_engine.store import ModelStore
    from sla_pipeline.training.scoring import score_pairs as run_scoring

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = ModelStore().resolve(args.model)
    if args.bank is not None:
        return bank_scores(args, model.path)
    if args.features is None:
        raise ValueError("--pairs needs --features (the backbone feature cache)")
    result = run_scoring(model.path, args.head, args.pairs, args.features, args.max_response_tokens, args.lookahead,
                         args.compare)
    for source, r in result.items():
        seen = (f", {args.lookahead} tokens past the parting {r['lookahead_accuracy']:.3f} "
                f"[{r['lookahead_ci95'][0]:.3f}, {r['lookahead_ci95'][1]:.3f}]" if args.lookahead else "")
        print(f"{source:>10}: {r['pairs']:4d} pairs, accuracy {r['pair_accuracy']:.3f} "
              f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}], AuTRC {r['autrc']:.3f}{seen}; "
              f"top mean reward is a chosen answer on {r['pick']['right']} of {r['pick']['items']} items")
        if args.compare:
            c = r["compare"]
            print(f"{'':>10}  {args.compare}: accuracy {c['pair_accuracy']:.3f}, picks {c['pick']['right']}; "
                  f"only {args.head} right on {c['only_head']} pairs, only {args.compare} on {c['only_other']}, "
                  f"gain {c['gain']:+.3f} [{c['gain_ci95'][0]:+.3f}, {c['gain_ci95'][1]:+.3f}] over items")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def accuracy_text(a: dict) -> str:
    return "-" if a["accuracy"] is None else f"{a['accuracy']:.3f} [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}]"


def bank_scores(args: argparse.Namespace, model_path: Path) -> int:
    from sla_pipeline.training.bank_scoring import score_bank

    heads = [args.head] + ([args.compare] if args.compare else [])
    result = score_bank(model_path, heads, args.bank, lookahead=args.lookahead or 30,
                        limit=max(args.max_response_tokens, 512), curve=args.curve,
                        domains=args.domains)
    print(f"always keeping the trunk (greedy's side): siblings {accuracy_text(result['keep_trunk'])} on "
          f"{result['keep_trunk']['pairs']} pairs")
    for head, r in result["heads"].items():
        print(f"{head}: keeps the trunk of " + ", ".join(f"{share:.3f} of the siblings by {readout}"
                                                         for readout, share in r["trunk_chosen"].items()
                                                         if share is not None))
        for choice in ("siblings", "candidates"):
            for readout, a in r[choice].items():
                mark = " (its read-out)" if readout == r["readout"] else ""
                print(f"{head}: {choice} by {readout}{mark}: {accuracy_text(a)} on {a['pairs']} pairs of "
                      f"{a['problems']} problems")
        for readout, a in r["fork_candidates"].items():
            print(f"{head}: trunk and forks read whole, by {readout}: {accuracy_text(a)} on {a['pairs']} pairs")
        for what, readout, b in [("best-of", k, b) for k, b in r["best_of_n"].items()] + [
                ("trunk + forks, best of", k, b) for k, b in r["fork_rollouts"].items()]:
            if b["problems"]:
                print(f"{head}: {what} {b['candidates']} (greedy first) on {b['problems']} problems, greedy "
                      f"{b['greedy']:.3f}, oracle {b['oracle']:.3f}; " + "; ".join(
                          f"{name} {c['accuracy']:.3f}, {c['gain']:+.3f} [{c['gain_ci95'][0]:+.3f}, "
                          f"{c['gain_ci95'][1]:+.3f}], fixed {c['fixed']} / broke {c['broke']}"
                          for name, c in ((f"by {readout}", b["pick"]), ("majority vote", b["vote"]))))
        for readout, f in r["fork_over_greedy"].items():
            print(f"{head}: the fork over greedy by {readout}, {f['pairs']} sibling pairs: " + "; ".join(
                f"margin {m['margin']:.3f} (q{m['quantile']:.2f}) taken {m['taken']}, fixed {m['fixed']} / "
                f"broke {m['broke']}" for m in f["margins"]))
        for key, by in r.get("siblings_by_lookahead", {}).items():
            print(f"{head}: siblings {key} tokens past the fork: "
                  + ", ".join(f"by {readout} {accuracy_text(a)}" for readout, a in by.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
