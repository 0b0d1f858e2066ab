"""The results tables of README.md and docs/results.md, made from the committed `sla eval` reports, so that no
number in them can drift from what was measured.

A table is a list of rows, each a strategy of one report on one set; between the markers

    <!-- results:NAME -->
    ...
    <!-- /results:NAME -->

of a page stands the table NAME as `render` writes it. `python -m sla_pipeline.eval.results --write` rewrites
every marked table of README.md and docs/results.md; without `--write` it says which tables differ (a test
runs that check).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
EVAL = "heads/qwen2.5-coder-0.5b-instruct/eval"
PAGES = ("README.md", "docs/results.md")


@dataclass(frozen=True)
class Row:
    label: str  # what the reader sees in the first column (markdown)
    report: str  # the report's folder, relative to the repository
    strategy: str
    set_name: str


def _row(label: str, report: str, strategy: str, set_name: str) -> Row:
    return Row(label, f"{EVAL}/{report}", strategy, set_name)


FORKS = '`{"strategy": "fork_rollouts", "score": "mean"}`'
SLA_END = ('`{"strategy": "sla", "width": 2, "chunk": 10, "lookahead": "end", "fork_min_p": 0.1, '
           '"prefer_finished": true, "score": "mean"}`')
TABLES: dict[str, list[Row]] = {
    "readme": [
        _row("greedy", "test-bon", "greedy", "gsm"),
        _row("**fork rollouts** (recommended)", "test-bon", "value184-mean-forks-4", "gsm"),
        _row("SLA looking ahead to the end", "test-sla-end", "value184-mean-sla-end-p0.1-pf", "gsm"),
        _row("best-of-5 by vote", "test-bon", "value184-mean-bon-5-gf-k20-pf-vote", "gsm"),
        _row("best-of-9 by vote", "test-bon", "value184-mean-bon-9-gf-k20-pf-vote", "gsm"),
    ],
    "gsm-test": [
        _row(f"fork rollouts, 4 forks: {FORKS}", "test-bon", "value184-mean-forks-4", "gsm"),
        _row(f"SLA(2,10) to the end: {SLA_END}", "test-sla-end", "value184-mean-sla-end-p0.1-pf", "gsm"),
        _row("best-of-5 by vote (N = 5)", "test-bon", "value184-mean-bon-5-gf-k20-pf-vote", "gsm"),
        _row("best-of-9 by vote (N = 9)", "test-bon", "value184-mean-bon-9-gf-k20-pf-vote", "gsm"),
        _row("best-of-4, T 0.7, Bradley–Terry head (2026-11)", "gsm200", "bon-4", "gsm"),
    ],
    "gsm-validation": [
        _row("fork rollouts, 4 forks", "validation-bon", "value184-mean-forks-4", "gsm-validation"),
        _row("SLA(2,10) to the end", "validation-sla-end", "value184-mean-sla-end-p0.1-pf", "gsm-validation"),
        _row("best-of-5, head's pick", "validation-bon", "value184-mean-bon-5-gf-k20-pf", "gsm-validation"),
        _row("best-of-5 by vote", "validation-bon", "value184-mean-bon-5-gf-k20-pf-vote", "gsm-validation"),
        _row("best-of-9 by vote", "validation-bon", "value184-mean-bon-9-gf-k20-pf-vote", "gsm-validation"),
        _row("SLA(2,10,2), `fork_min_p` 0.1, value head's last token", "validation-sla-value",
             "value184-last-sla-2-10-2-p0.1", "gsm-validation"),
        _row("SLA(2,20,2), `fork_min_p` 0.1, Bradley–Terry head", "validation", "sla-2-20-2-p0.1", "gsm-validation"),
        _row("SLA(2,30,2), `fork_min_p` 0.1, Bradley–Terry head", "validation", "sla-2-30-2-p0.1", "gsm-validation"),
    ],
    "gsm-validation-forks": [
        _row("greedy", "validation-cost", "greedy", "gsm-validation"),
        _row("fork rollouts, 4 forks", "validation-cost", "value184-mean-forks-4", "gsm-validation"),
        _row('fork rollouts, 2 forks: `{"strategy": "fork_rollouts", "forks": 2, "score": "mean"}`',
             "validation-cost", "value184-mean-forks-2", "gsm-validation"),
        _row('fork rollouts, 1 fork: `{"strategy": "fork_rollouts", "forks": 1, "score": "mean"}`',
             "validation-cost", "value184-mean-forks-1", "gsm-validation"),
    ],
    "mbpp-validation": [
        _row("greedy", "validation-domains", "greedy", "mbpp-validation"),
        _row("fork rollouts, 4 forks (value-184, trained on GSM only)", "validation-domains", "value184-mean-forks-4",
             "mbpp-validation"),
    ],
    "ifeval-validation": [
        _row("greedy", "validation-ifeval", "greedy", "ifeval-validation"),
        _row('SLA(2,10,2), `fork_min_p` 0.1, value-184 by its last token: `{"strategy": "sla", "width": 2, '
             '"chunk": 10, "depth": 2, "fork_min_p": 0.1}`', "validation-ifeval", "value184-last-sla-2-10-2-p0.1",
             "ifeval-validation"),
    ],
}


def _report(folder: str) -> dict:
    return json.loads((ROOT / folder / "report.json").read_text())


def _cells(row: Row, readme: bool) -> list[str]:
    report = _report(row.report)
    s, base = report["strategies"][row.strategy], report["strategies"][report["baseline"]]
    a, g, c = s["accuracy"][row.set_name], s["gain"].get(row.set_name), s["cost"]
    wall = f"{c['mean_wall_s']:.0f} / {base['cost']['mean_wall_s']:.0f}"
    first = "–" if c["mean_ttft_s"] is None else f"{c['mean_ttft_s']:.1f}"
    if g is None:
        gain, changed = "baseline", "–"
    else:
        gain = f"{100 * g['gain']:+.1f} [{100 * g['ci95'][0]:+.1f}, {100 * g['ci95'][1]:+.1f}]"
        changed = f"{g['fixed']} / {g['broke']}, p {g['p_value']:.2f}"
    right = f"{a['correct']} / {a['total']}"
    tokens = f"{c['generated_per_emitted']:.1f}×"
    if readme:
        return [row.label, right, gain, tokens, first, wall]
    return [row.label, right, gain, changed, tokens, first, wall]


def render(name: str) -> str:
    readme = name == "readme"
    head = (["search", "right", "gain over greedy, points [95 %]"] + ([] if readme else ["fixed / broke"])
            + ["generated per emitted token", "first token, s", "last token, s (greedy's)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cells(r, readme)) + " |" for r in TABLES[name]]
    return "\n".join(lines)


MARKED = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(\n<!-- /results:(?P=name) -->)", re.DOTALL)


def refreshed(text: str) -> str:
    """`text` with every marked table rendered anew."""
    return MARKED.sub(lambda m: m.group(1) + render(m.group("name")) + m.group(4), text)


def stale(pages: tuple[str, ...] = PAGES) -> list[str]:
    """The pages whose marked tables differ from what the reports say."""
    return [p for p in pages if refreshed((ROOT / p).read_text()) != (ROOT / p).read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the marked tables in place")
    args = parser.parse_args(argv)
    if args.write:
        for p in PAGES:
            (ROOT / p).write_text(refreshed((ROOT / p).read_text()))
        return 0
    differ = stale()
    for p in differ:
        print(f"{p}: its results tables differ from the reports; run python -m sla_pipeline.eval.results --write")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
