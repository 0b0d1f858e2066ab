"""The gain-against-cost picture (sla_pipeline/analyses/frontier.py), from committed `sla eval` reports."""

from __future__ import annotations

from sla_pipeline.analyses.frontier import Point, frontier, main, points
from tests.helpers.paths import ROOT

EVAL = ROOT / "heads" / "qwen2.5-coder-0.5b-instruct" / "eval"


def test_points_come_from_the_reports_baseline_excluded_first_report_wins():
    found = points([EVAL / "validation-sla-end", EVAL / "validation-bon"], "gsm-validation")
    names = [p.strategy for p in found]
    assert "greedy" not in names and names.count("value184-mean-forks-4") == 1
    forks = next(p for p in found if p.strategy == "value184-mean-forks-4")
    assert forks.report == "validation-sla-end" and forks.low <= forks.gain <= forks.high and forks.items == 200
    assert points([EVAL / "validation-sla-end"], "gsm") == []  # not measured on the test set there


def test_the_frontier_keeps_what_nothing_beats_on_both_gain_and_cost():
    def p(name: str, gain: float, cost: float) -> Point:
        return Point(name, "r", gain, gain - 1, gain + 1, cost, 10)

    cheap, dear, beaten, best = p("cheap", 2, 1.5), p("dear", 9, 9), p("beaten", 1, 3), p("best", 7, 3.5)
    assert frontier([dear, beaten, cheap, best]) == [cheap, best, dear]


def test_the_picture_is_drawn(tmp_path, capsys):
    out = tmp_path / "frontier.png"
    assert main(["--set", "gsm", "--out", str(out), str(EVAL / "test-bon"), str(EVAL / "test-sla-end")]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "value184-mean-bon-9-gf-k20-pf-vote: +10.0 [+4.5, +16.0]" in capsys.readouterr().out
