"""The bank's `manifest.json`: how its answers were made (generator, model, and per domain the problems,
settings and seeds) and what it holds (counts per collection, kind and split, and the pairs whose outcomes
differ), its domain's entry rewritten from the files after every sealed slice."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sla_engine.store import ModelStore
from sla_pipeline.bank.collection import Collection
from sla_pipeline.bank.pairs import candidate_pairs, sibling_pairs
from sla_pipeline.bank.plan import GrowPlan
from sla_pipeline.bank.problems import TEST_SEED, TEST_SIZE, VALIDATION_SEED, collections
from sla_pipeline.bank.record import BankRecord
from sla_pipeline.domains import DOMAINS

GENERATOR = "sla bank grow (sla_pipeline/bank/grow.py)"
PROBLEMS = {
    "gsm": {"train": "GSM-symbolic variants of train-side templates, seed 0 (gsm_items('train', N))",
            "heldout": f"validation: held-out templates, seed {VALIDATION_SEED}, leaving out the {TEST_SIZE} test "
                       f"problems (held-out, seed {TEST_SEED})"},
    "mbpp": {"train": "MBPP's train side (mbpp_items('train'), sla_pipeline/domains/splits/mbpp.json)",
             "heldout": "validation: MBPP's validation side (mbpp_items('validation'))"},
    "ifeval": {"train": "training prompts made like IFEval's on alpaca_en_demo prompts (if_train_items(N))",
               "heldout": "validation: IFEval's validation side (ifeval_items('validation'), "
                          "sla_pipeline/domains/splits/ifeval.json)"},
}


def counts(records: list[BankRecord]) -> dict:
    """Per kind and split: records, problems, right answers, answers cut at max_tokens, tokens."""
    c: Counter = Counter()
    problems: dict[str, set[str]] = {}
    for r in records:
        key = f"{r.kind}/{r.split}"
        c[f"{key}/records"] += 1
        c[f"{key}/correct"] += r.correct
        c[f"{key}/cut"] += r.finish_reason == "length"
        c[f"{key}/tokens"] += r.tokens
        problems.setdefault(key, set()).add(r.item)
    out: dict = {}
    for key in sorted(problems):
        kind, split = key.split("/")
        out.setdefault(kind, {})[split] = {"problems": len(problems[key]), "records": c[f"{key}/records"],
                                           "correct": c[f"{key}/correct"], "cut": c[f"{key}/cut"],
                                           "tokens": c[f"{key}/tokens"]}
    return out


def pair_counts(records: list[BankRecord]) -> dict:
    """Per split, the pairs whose outcomes differ among the forks and samples `records`, and their problems:
    siblings (a trunk and its fork, SLA's choice) and candidates (the trunk and the samples of one problem,
    best-of-N's)."""
    out: dict = {}
    for split in sorted({r.split for r in records}):
        mine = [r for r in records if r.split == split]
        out[split] = {name: {"pairs": len(pairs), "problems": len({p.item for p in pairs})}
                      for name, pairs in (("siblings", sibling_pairs(mine)), ("candidates", candidate_pairs(mine)))}
    return out


def holdings(bank: Path, domain: str) -> dict:
    """What `sla bank stats` prints for a domain: each collection's counts and the pairs."""
    samples, forks, rollouts = collections(domain)
    held = {name: list(Collection(bank / name).records()) for name in (samples, forks, rollouts)}  # read once
    return {"collections": {name: counts(records) for name, records in held.items() if records},
            "pairs": pair_counts([*held[forks], *held[samples]])}


def write_manifest(plan: GrowPlan) -> dict:
    """Rewrites the plan's domain's entry (the other domains' stay as they are); returns its holdings."""
    model = ModelStore().resolve(plan.model)
    sha = json.loads((model.path / "sla-model.json").read_text())["gguf_sha256"] if (
        model.path / "sla-model.json").is_file() else None
    path = plan.bank / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    if manifest and "domains" not in manifest:  # written before domains: all of it was GSM's
        manifest = {"domains": {"gsm": {k: v for k, v in manifest.items()
                                        if k not in ("generator", "model", "model_gguf_sha256")}}}
    held = holdings(plan.bank, plan.domain)
    samples, forks, rollouts = collections(plan.domain)
    sampling = {k: v for k, v in plan.as_json()["sampling"].items() if k in ("temperature", "top_k", "max_tokens")}
    entry = {
        "problems": PROBLEMS[plan.domain],
        "collections": {
            samples: {"settings": {**plan.as_json()["sampling"], "validation_samples": plan.validation_samples,
                                   "seed_rule": "one request per problem, n samples, seed item_seed(item, seed)"},
                      "counts": held["collections"].get(samples, {})},
            forks: {"settings": {**plan.as_json()["forks"],
                                 "rule": "greedy trunk; at up to per_problem chunk boundaries (every `chunk` tokens, "
                                         "before max_fork_at) where p(runner-up)/p(greedy) >= min_ratio, the "
                                         "runner-up token then greedy to the end"},
                    "counts": held["collections"].get(forks, {})},
        },
        "pairs": held["pairs"],
        "plan": plan.as_json(),
    }
    if rollouts in held["collections"]:
        entry["collections"][rollouts] = {
            "settings": {**plan.as_json()["rollouts"], **sampling,
                         "rule": "each sibling pair's answers cut `lookahead` tokens past where they part (an answer "
                                 "that ends inside is not continued), continued `per_prefix` times; max_tokens "
                                 "counts from the answer's start",
                         "seed_rule": "one request per prefix, seed item_seed(f'{parent}|{side}|{lookahead}', 0, "
                                      "start), side 'right' or 'wrong' (the parent's outcome), start the first "
                                      "rollout index it draws"},
            "counts": held["collections"][rollouts]}
    domains = {**manifest.get("domains", {}), plan.domain: entry}
    manifest = {"generator": GENERATOR, "model": model.name, "model_gguf_sha256": sha,
                "domains": {d: domains[d] for d in DOMAINS if d in domains}}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return held
