"""The evaluation report: `report.json`, `report.md` (a table a reader can paste) and `report.png` (quality
against compute per emitted token, one point per strategy, one panel per set)."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from pathlib import Path

from sla_pipeline.eval.generation import Generation
from sla_pipeline.eval.stats import Accuracy, Equity, PairedGain
from sla_pipeline.judges.check import describe


def cost(generations: list[Generation]) -> dict:
    ttfts = [g.ttft_s for g in generations if g.ttft_s is not None]
    emitted = sum(g.tokens_emitted for g in generations)
    return {
        "answers": len(generations),
        "tokens_emitted": emitted,
        "tokens_generated": sum(g.tokens_generated for g in generations),
        "generated_per_emitted": sum(g.tokens_generated for g in generations) / emitted if emitted else None,
        "mean_wall_s": statistics.fmean(g.wall_s for g in generations),
        "mean_ttft_s": statistics.fmean(ttfts) if ttfts else None,
        "median_ttft_s": statistics.median(ttfts) if ttfts else None,
    }


def strategy_entry(search: dict, generations: list[Generation], equities: dict[str, Equity],
                   accuracies: dict[str, Accuracy], gains: dict[str, PairedGain],
                   checks: dict[str, Accuracy]) -> dict:
    """`gains` (checked sets, against the baseline on the same items) is empty for the baseline itself;
    `checks`: the share of single checks passed, on the sets that have them (IFEval: instruction-level
    accuracy; MBPP: test asserts)."""
    return {"search": search, "cost": cost(generations),
            "equity": {name: asdict(e) for name, e in equities.items()},
            "accuracy": {name: asdict(a) for name, a in accuracies.items()},
            "checks": {name: asdict(a) for name, a in checks.items()},
            "gain": {name: asdict(g) for name, g in gains.items()}}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _accuracy(a: dict) -> str:
    return (f"{100 * a['accuracy']:.1f} % [{100 * a['ci95'][0]:.1f}, {100 * a['ci95'][1]:.1f}] "
            f"({a['correct']}/{a['total']})")


def markdown(report: dict) -> str:
    strategies = report["strategies"]
    judged = [name for name, s in report["sets"].items() if s["kind"] == "judged"]
    checked = [name for name, s in report["sets"].items() if s["kind"] in ("checked", "math")]  # math: older reports
    with_checks = [n for n in checked if any(n in s.get("checks", {}) for s in strategies.values())]
    head = (["strategy"] + [f"{n} equity vs {report['baseline']} (W/T/L)" for n in judged]
            + [c for n in checked for c in (f"{n} accuracy", f"{n} gain vs {report['baseline']} (fixed/broke, p)")]
            + [f"{n} checks passed" for n in with_checks]
            + ["generated / emitted tokens", "mean TTFT s", "mean wall s"])
    rows = []
    for name, s in strategies.items():
        cells = [f"`{name}`"]
        for n in judged:
            e = s["equity"].get(n)
            cells.append("baseline" if e is None else
                         f"{100 * e['equity']:.1f} % [{100 * e['ci95'][0]:.1f}, {100 * e['ci95'][1]:.1f}] "
                         f"({e['win']}/{e['tie']}/{e['loss']})")
        for n in checked:
            cells.append(_accuracy(s["accuracy"][n]))
            g = s["gain"].get(n)
            cells.append("baseline" if g is None else
                         f"{100 * g['gain']:+.1f} pts [{100 * g['ci95'][0]:+.1f}, {100 * g['ci95'][1]:+.1f}] "
                         f"({g['fixed']}/{g['broke']}, p {g['p_value']:.2f})")
        cells += [_accuracy(s["checks"][n]) if n in s.get("checks", {}) else "–" for n in with_checks]
        c = s["cost"]
        cells += [_fmt(c["generated_per_emitted"]), _fmt(c["mean_ttft_s"]), _fmt(c["mean_wall_s"])]
        rows.append(cells)
    sizes = ", ".join(f"{n} {s['items']}" for n, s in report["sets"].items())
    method = report.get("judge_method", "pairwise")  # reports written before judge methods were pairwise
    lines = [f"Model `{report['model']}` at {report['base_url']}; judge `{report['judge']}` ({method}); "
             f"items: {sizes}; max_tokens {report['max_tokens']}. 95 % bootstrap intervals in brackets.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    validation = report.get("judge_validation")  # None: no general set, or a report from before 2026-12-05
    if validation and not validation["passed"]:
        lines += ["", f"**The equities above are not evidence**: {describe(validation)}."]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(report["sets"].items())
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 4), squeeze=False)
    for ax, (name, info) in zip(axes[0], sets):
        for strategy, s in report["strategies"].items():
            x = s["cost"]["generated_per_emitted"]
            y = (s["equity"].get(name, {}).get("equity", 0.5) if info["kind"] == "judged"
                 else s["accuracy"][name]["accuracy"])
            if x is not None:
                ax.scatter([x], [100 * y], label=strategy)  # a legend, not labels: close points overlap
        ax.set_title(name)
        ax.set_xlabel("tokens generated per emitted token")
        ax.set_ylabel(f"equity vs {report['baseline']} (%)" if info["kind"] == "judged" else "accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict, out: Path) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    plot(report, out / "report.png")
