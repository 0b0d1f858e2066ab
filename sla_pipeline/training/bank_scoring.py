"""`sla score-pairs HEAD --bank BANK`: how well heads make a search's two choices on the bank's validation
answers — siblings as SLA sees them (`lookahead` tokens past the fork: 30 for SLA(2, 10, 2)) and best-of-N's
candidates — under both read-outs (the mean reward over the tokens seen, and the reward at the last one),
the head's own marked; optionally siblings at more look-aheads (`curve`: how far past the fork a search must
read before the head tells them apart, e.g. 10, 60, 120 and whole answers); and best-of-N with the greedy
answer first replayed on each problem's answers, against greedy (what a server row of best-of-N would
measure, on the bank's draws, before running one); and SLA's fork choice with greedy as the default, taken
only above a margin (`fork_over_greedy`: whether the head's confident choices are the right ones); and the
same best-of-N over the trunk and its forks read whole (`fork_rollouts`: the choice at a fork with the
look-ahead reaching the answer's end, where the head can tell finished answers apart). Nothing
is cached: each answer goes once through the frozen backbone, as far as a choice reads it, and every head is
applied to the same features.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sla_engine.reward import RewardHead
from sla_engine.reward.weights import READOUTS
from sla_pipeline.bank.pairs import candidate_pairs, sibling_pairs
from sla_pipeline.bank.read import prompt_ids, read_bank
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.training.choices import (
    Scorer,
    best_of_n_replay,
    choice_accuracy,
    fork_over_greedy,
    keep_trunk,
    reach,
    read,
    trunk_share,
)
from sla_pipeline.training.features import frozen_backbone, rewards_of


def score_bank(model_path: Path, head_dirs: list[Path], bank: Path, split: str = "heldout", lookahead: int = 30,
               limit: int = 512, curve: Sequence[int | None] = (), domains: Sequence[str] = ("gsm",)) -> dict:
    """`score_answers` on the bank's `split` answers (validation by default) of `domains`."""
    from transformers import AutoTokenizer

    heads = [RewardHead.load_for(d, model_path) for d in head_dirs]
    records = [r for r in read_bank(bank, domains=domains) if r.split == split]
    prompts = prompt_ids(AutoTokenizer.from_pretrained(model_path), records)
    backbone = frozen_backbone(model_path)
    result = score_answers(backbone, dict(zip(map(str, head_dirs), heads)), records, prompts, lookahead, limit, curve)
    return {"split": split, **result}


def scorer(rewards: dict[str, list[float]], readout: str) -> Scorer:
    return lambda answer, seen: read(rewards[answer.id], seen, readout)


def curve_key(lookahead: int | None) -> str:
    return "all" if lookahead is None else str(lookahead)


def score_answers(backbone, heads: dict[str, RewardHead], records: list[BankRecord], prompts: dict[str, list[int]],
                  lookahead: int = 30, limit: int = 512, curve: Sequence[int | None] = ()) -> dict:
    """{"lookahead", "problems", "keep_trunk": the siblings chosen by always keeping the trunk (greedy), "heads":
    {NAME: {"readout", "siblings": {READOUT: {"pairs", "problems", "accuracy", "ci95"}}, "candidates": {...},
    "trunk_chosen": {READOUT: how often the head keeps the trunk}, "pairs", "lookahead_accuracy",
    "lookahead_ci95"}}}; the last three are the siblings' under the head's own read-out; "best_of_n": {READOUT:
    best_of_n_replay's result}
    (with `prefer_finished`, as the README's setting); "fork_over_greedy": {READOUT: fork_over_greedy's result}
    on the siblings at `lookahead`; "fork_candidates": {READOUT: {"pairs", ...}} (every right-vs-wrong pair
    among a problem's trunk and forks, whole) and "fork_rollouts": {READOUT: best_of_n_replay's result over
    the trunk and its forks}. With a `curve` (look-aheads, None for whole
    answers), each head also has "siblings_by_lookahead": {"10" | ... | "all": {READOUT: {...}}}."""
    if any(c is not None and c < 1 for c in curve) or lookahead < 1:
        raise ValueError(f"look-aheads are at least one token: {lookahead}, {list(curve)}")
    siblings, candidates = sibling_pairs(records), candidate_pairs(records)
    fork_candidates = candidate_pairs(records, "fork")
    if not siblings and not candidates:
        raise ValueError("no pairs to score")
    whole = [(candidates, None), (fork_candidates, None)]
    answers = reach([(siblings, lookahead), *whole] + [(siblings, c) for c in curve], limit)
    result = {"lookahead": lookahead, "problems": len({r.item for r in records}),
              "keep_trunk": choice_accuracy(siblings, keep_trunk, lookahead, limit), "heads": {}}
    for (name, head), rewards in zip(heads.items(), rewards_of(backbone, list(heads.values()), answers, prompts)):
        entry: dict = {"readout": head.readout, "siblings": {}, "candidates": {}}
        for readout in READOUTS:
            entry["siblings"][readout] = choice_accuracy(siblings, scorer(rewards, readout), lookahead, limit)
            entry["candidates"][readout] = choice_accuracy(candidates, scorer(rewards, readout), None, limit)
        entry["best_of_n"] = {r: best_of_n_replay(records, scorer(rewards, r), limit) for r in READOUTS}
        entry["trunk_chosen"] = {r: trunk_share(siblings, scorer(rewards, r), lookahead, limit) for r in READOUTS}
        entry["fork_over_greedy"] = {r: fork_over_greedy(siblings, scorer(rewards, r), lookahead, limit)
                                     for r in READOUTS}
        entry["fork_candidates"] = {r: choice_accuracy(fork_candidates, scorer(rewards, r), None, limit)
                                    for r in READOUTS}
        entry["fork_rollouts"] = {r: best_of_n_replay(records, scorer(rewards, r), limit, kind="fork")
                                  for r in READOUTS}
        if curve:
            entry["siblings_by_lookahead"] = {
                curve_key(c): {r: choice_accuracy(siblings, scorer(rewards, r), c, limit) for r in READOUTS}
                for c in curve}
        own = entry["siblings"][head.readout]
        entry |= {"pairs": own["pairs"], "lookahead_accuracy": own["accuracy"], "lookahead_ci95": own["ci95"]}
        result["heads"][name] = entry
    return result
