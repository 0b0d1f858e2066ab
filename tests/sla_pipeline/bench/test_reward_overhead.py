"""The reward-overhead benchmark's paired ratios: per round, the three measurements ran back to back."""

from __future__ import annotations

import pytest

from sla_pipeline.bench.reward_overhead import paired, paired_ratio


def test_a_constant_slowdown_is_its_ratio_with_no_spread():
    assert paired_ratio([9.0, 18.0, 4.5], [10.0, 20.0, 5.0]) == {"ratio": 0.9, "ci95": [0.9, 0.9]}


def test_rounds_are_paired_so_a_drift_of_the_machine_cancels():
    # the machine halves its speed over the rounds; within every round reading costs 20 %
    plain = [20.0, 16.0, 12.0, 10.0, 8.0]
    reading = [0.8 * x for x in plain]
    assert paired_ratio(reading, plain)["ratio"] == pytest.approx(0.8)


def test_the_interval_holds_the_ratio_and_widens_with_noise():
    plain = [10.0] * 8
    noisy = paired_ratio([9.0, 11.0, 8.5, 10.5, 9.5, 10.0, 8.0, 11.5], plain)
    low, high = noisy["ci95"]
    assert low < noisy["ratio"] < high and high - low > 0.05


def test_the_three_comparisons_of_a_batch():
    out = paired({"plain": [10.0, 10.0], "reward": [8.0, 8.0], "reward_plain_request": [9.0, 9.0]})
    assert out["reading_vs_plain_engine"]["ratio"] == 0.8
    assert out["plain_request_vs_plain_engine"]["ratio"] == 0.9
    assert out["reading_vs_plain_request"]["ratio"] == pytest.approx(0.889, abs=1e-3)


def test_rounds_of_different_lengths_are_refused():
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])
