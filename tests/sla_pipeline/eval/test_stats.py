"""Equity, accuracy and paired gains with their bootstrap intervals, and the sign test."""

from __future__ import annotations

import pytest

from sla_pipeline.eval.stats import Accuracy, Equity, PairedGain, bootstrap_ci, sign_test_p


def test_equity_counts_ties_half_and_its_interval_brackets_it():
    e = Equity.of(["first", "first", "tie", "second"] * 10)
    assert (e.win, e.tie, e.loss) == (20, 10, 10) and e.equity == pytest.approx(0.625)
    assert 0.45 < e.ci95[0] < 0.625 < e.ci95[1] < 0.8
    assert Equity.of(["first"] * 7).ci95 == (1.0, 1.0)  # no spread to resample
    assert Equity.of(["tie"] * 5).equity == 0.5


def test_bootstrap_interval_narrows_with_more_items_and_is_reproducible():
    small = bootstrap_ci([1.0, 0.0] * 10)
    large = bootstrap_ci([1.0, 0.0] * 500)
    assert small[1] - small[0] > 2 * (large[1] - large[0])
    assert large[0] < 0.5 < large[1]
    assert bootstrap_ci([1.0, 0.0, 0.5]) == bootstrap_ci([1.0, 0.0, 0.5])
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_grouped_bootstrap_resamples_whole_groups():
    """40 scores from 4 groups whose scores agree within the group are 4 observations, not 40: the interval
    widens; groups of one score give the same spread as the plain bootstrap."""
    scores = [1.0] * 10 + [0.0] * 10 + [1.0] * 10 + [0.0] * 10
    plain = bootstrap_ci(scores)
    grouped = bootstrap_ci(scores, groups=[str(i // 10) for i in range(40)])
    assert grouped[1] - grouped[0] > 2 * (plain[1] - plain[0])
    assert grouped[0] < 0.5 < grouped[1]
    singles = bootstrap_ci(scores, groups=[str(i) for i in range(40)])
    assert abs((singles[1] - singles[0]) - (plain[1] - plain[0])) < 0.1
    low, high = bootstrap_ci([1.0, 0.0, 1.0], groups=["a", "a", "b"])  # group means 0.5 and 1: never below 0.5
    assert 0.5 <= low < high <= 1.0
    with pytest.raises(ValueError, match="group labels"):
        bootstrap_ci([1.0, 0.0], groups=["a"])


def test_accuracy_and_its_interval():
    a = Accuracy.of([True, False, False, True, True])
    assert (a.correct, a.total, a.accuracy) == (3, 5, 0.6) and a.ci95[0] <= 0.6 <= a.ci95[1]


def test_sign_test_is_exact_and_two_sided():
    assert sign_test_p(7, 3) == pytest.approx(2 * (1 + 10 + 45 + 120) / 2 ** 10)  # 0.344
    assert sign_test_p(3, 7) == sign_test_p(7, 3)
    assert sign_test_p(10, 0) == pytest.approx(2 / 2 ** 10)
    assert sign_test_p(5, 5) == 1.0 and sign_test_p(0, 0) == 1.0


def test_paired_gain_counts_fixed_and_broken_items_against_the_baseline():
    mine = [True, True, False, True, False, True]
    base = [False, True, True, False, False, False]
    g = PairedGain.of(mine, base)
    assert (g.fixed, g.broke) == (3, 1) and g.gain == pytest.approx(2 / 6)
    assert g.ci95[0] <= g.gain <= g.ci95[1] and g.p_value == pytest.approx(sign_test_p(3, 1))
    # right wherever the baseline is, and on 6 more of 40: the two accuracies' intervals overlap, the pairing
    # shows the gain
    mine, base = [True] * 20 + [False] * 20, [True] * 14 + [False] * 26
    assert Accuracy.of(mine).ci95[0] < Accuracy.of(base).ci95[1]
    g = PairedGain.of(mine, base)
    assert (g.fixed, g.broke) == (6, 0) and g.ci95[0] > 0 and g.p_value == pytest.approx(2 / 2 ** 6)
    assert PairedGain.of(mine, mine).ci95 == (0.0, 0.0)
    with pytest.raises(ValueError, match="lengths"):
        PairedGain.of([True], [True, False])
