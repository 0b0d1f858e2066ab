"""What each search buys and what it costs, on one evaluation set: gain over greedy (points, with its paired
95 % interval) against generated tokens per emitted token, one point per strategy of every `sla eval` report
given, drawn into one PNG.

    python -m sla_pipeline.analyses.frontier --set gsm-validation --out docs/results/gsm-validation.png \
        heads/MODEL/eval/validation-bon heads/MODEL/eval/validation-sla-end ...

A report folder holds report.json; each of its strategies but the baseline is a point (its gain is paired with
that report's baseline on the same items). A strategy measured in several reports is drawn once, from the
report given first. The points that no other point beats on both gain and cost — the frontier — are joined,
and printed with their gain per extra token.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Point:
    strategy: str
    report: str  # the report folder's name
    gain: float  # points over the report's baseline
    low: float
    high: float
    cost: float  # generated tokens per emitted token
    items: int


def points(reports: list[Path], set_name: str) -> list[Point]:
    """Every strategy measured on `set_name` in `reports` (folders with report.json), the baseline excluded."""
    found: dict[str, Point] = {}
    for folder in reports:
        report = json.loads((folder / "report.json").read_text())
        for name, s in report["strategies"].items():
            gain, cost = s.get("gain", {}).get(set_name), s["cost"]["generated_per_emitted"]
            if gain is None or cost is None or name in found:
                continue
            found[name] = Point(name, folder.name, 100 * gain["gain"], 100 * gain["ci95"][0], 100 * gain["ci95"][1],
                                cost, s["accuracy"][set_name]["total"])
    return list(found.values())


def frontier(found: list[Point]) -> list[Point]:
    """The points no other point beats on both gain (higher) and cost (lower), cheapest first."""
    best = [p for p in found if not any(q.gain >= p.gain and q.cost <= p.cost and (q.gain, q.cost) != (p.gain, p.cost)
                                        for q in found)]
    return sorted(best, key=lambda p: p.cost)


def plot(found: list[Point], set_name: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.axhline(0, color="grey", lw=0.8)
    ax.scatter([1.0], [0.0], marker="s", color="black", label="greedy (the baseline)")
    for p in sorted(found, key=lambda p: p.cost):
        ax.errorbar([p.cost], [p.gain], yerr=[[p.gain - p.low], [p.high - p.gain]], fmt="o", capsize=3,
                    label=f"{p.strategy} ({p.items})")
    edge = frontier(found)
    if edge:
        ax.plot([1.0] + [p.cost for p in edge], [0.0] + [p.gain for p in edge], ls="--", color="grey", lw=0.8)
    ax.set_xlabel("generated tokens per emitted token (greedy = 1)")
    ax.set_ylabel("gain over greedy, points (paired 95 % interval)")
    ax.set_title(set_name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", required=True, dest="set_name", help="the evaluation set, e.g. gsm-validation")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("reports", type=Path, nargs="+", help="`sla eval` output folders (with report.json)")
    args = parser.parse_args(argv)
    found = points(args.reports, args.set_name)
    if not found:
        parser.error(f"no strategy but the baseline is measured on {args.set_name} in those reports")
    plot(found, args.set_name, args.out)
    for p in frontier(found):
        per_token = p.gain / (p.cost - 1) if p.cost > 1 else float("inf")
        print(f"{p.strategy}: {p.gain:+.1f} [{p.low:+.1f}, {p.high:+.1f}] at {p.cost:.2f} generated per emitted "
              f"({per_token:+.2f} points per extra token per emitted one)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
