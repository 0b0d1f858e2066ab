"""`sla judge-check`: does a judge agree with pairs whose better side is known? Validate before use.

Tiers of known pairs (`known_pairs`):
- `dpo_demo`: llamafactory's 300 `dpo_en_demo` pairs, chosen over rejected (no judge here was trained on them);
- `mtbench`: GPT-4's reference answer over the default model's own answer, for the MT-Bench questions that
  have references (first turns; the policy's answers are drawn once, greedy, and kept);
- `sanity`: an answer against the answer to a different question (a judge that fails this reads nothing).

Per judge and method: `agreement` over the non-sanity pairs (margin > 0 counts 1, = 0 one half, < 0 zero) with
a 95 % bootstrap interval, the mean `position_bias` (log-odds towards the answer shown first; pairwise only),
and the same per tier. Every judged pair is appended to a JSON Lines file as it is done, so a rerun resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sla_pipeline.data.jsonl import read_jsonl
from sla_pipeline.data.resumable import run_resumable
from sla_pipeline.data.sources import dpo_demo_pairs, mtbench_items
from sla_pipeline.eval.stats import bootstrap_ci
from sla_pipeline.judges.methods import Case, Judge

TARGET = 0.70  # agreement a method must reach on >= MIN_PAIRS non-sanity pairs before its verdicts are used
MIN_PAIRS = 100
REPORT = Path("judges/check/report.json")  # the committed report `sla eval` and `sla data` check judges against


@dataclass(frozen=True)
class KnownPair:
    id: str
    tier: str  # "dpo_demo", "mtbench" or "sanity"
    case: Case  # the better answer first


def transcript(messages: tuple[dict, ...]) -> str:
    """A conversation as the judge's instruction: the last user turn, after the earlier turns if any."""
    if len(messages) == 1:
        return messages[0]["content"]
    earlier = "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages[:-1])
    return f"{earlier}\n\nUser: {messages[-1]['content']}"


def known_pairs(policy_answers: dict[str, str], limit: int | None = None) -> list[KnownPair]:
    """`policy_answers`: the default model's answer per MT-Bench item id (questions with references)."""
    dpo = dpo_demo_pairs()[:limit]
    pairs = [KnownPair(d.id, "dpo_demo", Case(transcript(d.messages), d.chosen, d.rejected)) for d in dpo]
    mt = [it for it in mtbench_items(1) if it.reference and it.id in policy_answers][:limit]
    pairs += [KnownPair(it.id, "mtbench", Case(it.messages[-1]["content"], it.reference, policy_answers[it.id],
                                                 reference=it.reference)) for it in mt]
    for i, d in enumerate(dpo):  # the next pair's chosen answer answers another question
        other = dpo[(i + 1) % len(dpo)]
        pairs.append(KnownPair(f"{d.id}/vs/{other.id}", "sanity", Case(transcript(d.messages), d.chosen, other.chosen)))
    return pairs


def pairs_for(method: str, pairs: list[KnownPair]) -> list[KnownPair]:
    """The pairs a method is checked on: `reference` only where a reference exists (elsewhere it is `pointwise`
    with the same prompts, which judge-check measures already)."""
    return [p for p in pairs if p.case.reference] if method == "reference" else pairs


def agreement(outcomes: list[float], items: list[str]) -> dict:
    if not outcomes:
        return {"pairs": 0, "agreement": None, "ci95": None}
    return {"pairs": len(outcomes), "agreement": sum(outcomes) / len(outcomes),
            "ci95": bootstrap_ci(outcomes, groups=items)}


def summarize(results: list[dict]) -> dict:
    """{"pairs", "agreement", "ci95", "position_bias", "tiers": {TIER: {"pairs", "agreement", "ci95"}}} from
    judged pairs ({"id", "tier", "margin", "position_bias"})."""
    def outcome(r: dict) -> float:
        return 1.0 if r["margin"] > 0 else 0.5 if r["margin"] == 0 else 0.0

    real = [r for r in results if r["tier"] != "sanity"]
    out = agreement([outcome(r) for r in real], [r["id"] for r in real])
    out["position_bias"] = sum(r["position_bias"] for r in results) / len(results) if results else None
    out["tiers"] = {tier: agreement([outcome(r) for r in results if r["tier"] == tier],
                                    [r["id"] for r in results if r["tier"] == tier])
                    for tier in sorted({r["tier"] for r in results})}
    return out


async def check(judge: Judge, pairs: list[KnownPair], out: Path, concurrency: int = 4) -> dict:
    """Judges every pair not yet in `out` (appending as it goes) and summarizes them all."""
    done = {r["id"]: r for r in read_jsonl(out, dict)}

    async def one(pair: KnownPair) -> list[dict]:
        p = await judge.prefer(pair.case)
        done[pair.id] = {"id": pair.id, "tier": pair.tier, "margin": p.margin, "position_bias": p.position_bias}
        return [done[pair.id]]

    await run_resumable([p for p in pairs if p.id not in done], one, out, total=len(pairs), concurrency=concurrency,
                        desc=f"judge-check {judge.name}", unit="pair")
    return summarize([done[p.id] for p in pairs])


def verdict(report: dict) -> dict:
    """The best method per judge, and whether any reaches the target."""
    best = None
    for judge, entry in report["judges"].items():
        for method, m in entry["methods"].items():
            if m["agreement"] is not None and m["pairs"] >= MIN_PAIRS and (best is None or m["agreement"] > best[2]):
                best = (judge, method, m["agreement"])
    return {"target": TARGET, "min_pairs": MIN_PAIRS, "best": None if best is None else
            {"judge": best[0], "method": best[1],
             "agreement": best[2]}, "reached": best is not None and best[2] >= TARGET}


def standing(path: Path, judge: str, method: str) -> dict:
    """How `judge` (its label in reports: `opening.judge_label`) did with `method` in the judge-check report at
    `path`: {"report", "judge", "method", "pairs", "agreement", "passed"}; pairs and agreement are None where
    the report (or the file) has no such measurement, which does not pass."""
    measured = {}
    if path.is_file():
        measured = json.loads(path.read_text())["judges"].get(judge, {}).get("methods", {}).get(method, {})
    pairs, agreement = measured.get("pairs"), measured.get("agreement")
    return {"report": str(path), "judge": judge, "method": method, "pairs": pairs, "agreement": agreement,
            "passed": agreement is not None and pairs >= MIN_PAIRS and agreement >= TARGET}


def describe(standing: dict) -> str:
    """One line saying why a judge may not be trusted yet (or that it may)."""
    who = f"judge {standing['judge']!r} ({standing['method']})"
    if standing["passed"]:
        return f"{who} passed `sla judge-check`: agreement {standing['agreement']:.2f} on {standing['pairs']} pairs"
    if standing["agreement"] is None:
        return f"{who} has no `sla judge-check` measurement in {standing['report']}"
    return (f"{who} failed `sla judge-check`: agreement {standing['agreement']:.2f} on {standing['pairs']} pairs "
            f"(the bar: {TARGET:.2f} on at least {MIN_PAIRS})")


def require_validated(got: dict, verdicts: str, ways_out: str) -> None:
    """Raises unless the judge's standing (`standing`) passed: its `verdicts` ("labels", "equities") would not be
    evidence; `ways_out` names what the caller may do instead."""
    if not got["passed"]:
        raise ValueError(f"{describe(got)}: its {verdicts} would not be evidence. Validate a judge first "
                         f"(docs/judges.md), {ways_out}")


def write(report: dict, path: Path) -> dict:
    """Writes `report` to `path`, keeping the judges and methods of an earlier report there that this run did
    not measure (one method per run adds to the same file), with the verdict over all of them; returns that."""
    merged = {**report, "judges": {}}
    if path.exists():
        earlier = json.loads(path.read_text())["judges"]
        merged["judges"] = {j: {"methods": dict(e["methods"])} for j, e in earlier.items()}
    for judge, entry in report["judges"].items():
        merged["judges"].setdefault(judge, {"methods": {}})["methods"].update(entry["methods"])
    merged["verdict"] = verdict(merged)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return merged
