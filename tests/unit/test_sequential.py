"""The confidence sequences of the gates, against values worked out independently: scipy's
beta-binomial and binomial distributions (the mixture martingale is the ratio of the two
likelihoods), closed forms, and time-uniform coverage over simulated streams."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from modelbaton.stats.sequential import (
    bernoulli_cs,
    bin_edges,
    count_bounds,
    difference_cs,
    latency_bin,
    latency_histogram,
    quantile_cs,
)


def mixture(successes: int, n: int, p: float) -> float:
    """Robbins' beta-binomial mixture with Jeffreys' prior, from scipy: the beta-binomial
    likelihood over the binomial one (the binomial coefficient cancels)."""
    log = stats.betabinom.logpmf(successes, n, 0.5, 0.5) - stats.binom.logpmf(successes, n, p)
    return math.exp(min(float(log), 700.0))


@pytest.mark.parametrize(
    ("successes", "n", "alpha"), [(3, 10, 0.05), (86, 100, 0.05), (12, 1000, 0.005), (1, 2, 0.1)]
)
def test_bernoulli_bounds_are_where_the_mixture_reaches_one_over_alpha(
    successes: int, n: int, alpha: float
) -> None:
    low, high = bernoulli_cs(successes, n, alpha)
    assert 0.0 < low < successes / n < high < 1.0
    assert mixture(successes, n, low) == pytest.approx(1 / alpha, rel=1e-6)
    assert mixture(successes, n, high) == pytest.approx(1 / alpha, rel=1e-6)
    assert mixture(successes, n, (low + high) / 2) < 1 / alpha


def test_bernoulli_closed_forms() -> None:
    # All successes: M(p) = B(n + 1/2, 1/2) / B(1/2, 1/2) / p^n, so low = (alpha B(...)/pi)^(1/n)
    # and the upper bound is 1. For n = 5: B(5.5, 0.5) = Gamma(5.5) Gamma(0.5) / Gamma(6).
    beta = math.gamma(5.5) * math.gamma(0.5) / math.gamma(6)
    low, high = bernoulli_cs(5, 5, 0.005)
    assert low == pytest.approx((0.005 * beta / math.pi) ** (1 / 5), rel=1e-9)
    assert high == 1.0
    # No success: the mirror image.
    assert bernoulli_cs(0, 5, 0.005) == pytest.approx((0.0, 1 - low), rel=1e-9)
    assert bernoulli_cs(0, 0, 0.05) == (0.0, 1.0)


def test_bernoulli_cs_is_wider_than_a_fixed_sample_interval_and_shrinks() -> None:
    wilson = stats.binomtest(500, 1000).proportion_ci(0.95, method="wilson")
    low, high = bernoulli_cs(500, 1000, 0.05)
    assert low < wilson.low
    assert high > wilson.high
    widths = [np.subtract(*bernoulli_cs(n // 2, n, 0.05)[::-1]) for n in (100, 1000, 10_000)]
    assert widths[0] > widths[1] > widths[2]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        bernoulli_cs(1, 2, 0.0)
    with pytest.raises(ValueError, match="successes"):
        bernoulli_cs(3, 2, 0.05)
    with pytest.raises(ValueError, match="latency"):
        latency_bin(-1.0)


def test_time_uniform_coverage_where_a_repeated_fixed_interval_fails() -> None:
    """Over 400 streams of 400 Bernoulli(0.2) draws, looked at after every draw: the CS excludes
    the true rate at some point in at most alpha of the streams; the fixed-sample Wilson interval,
    looked at as often, does so far more often."""
    rng = np.random.default_rng(17)
    alpha, p = 0.1, 0.2
    draws = rng.random((400, 400)) < p
    counts = np.cumsum(draws, axis=1)
    cs_missed = wilson_missed = 0
    z = stats.norm.ppf(1 - alpha / 2)
    for path in counts:
        cs_out = wilson_out = False
        for n, s in enumerate(path.tolist(), start=1):
            low, high = bernoulli_cs(s, n, alpha)
            cs_out = cs_out or not low <= p <= high
            centre = (s / n + z * z / (2 * n)) / (1 + z * z / n)
            half = z / (1 + z * z / n) * math.sqrt(s / n * (1 - s / n) / n + z * z / (4 * n * n))
            wilson_out = wilson_out or not centre - half <= p <= centre + half
        cs_missed += cs_out
        wilson_missed += wilson_out
    assert cs_missed / 400 <= alpha
    assert wilson_missed / 400 > 2 * alpha


def test_difference_is_the_two_arms_at_half_alpha() -> None:
    lo_1, hi_1 = bernoulli_cs(30, 300, 0.025)
    lo_2, hi_2 = bernoulli_cs(100, 3000, 0.025)
    assert difference_cs(30, 300, 100, 3000, 0.05) == (lo_1 - hi_2, hi_1 - lo_2)


@pytest.mark.parametrize(("n", "alpha"), [(100, 0.025), (1000, 0.025), (5000, 0.005)])
def test_count_bounds_are_the_counts_the_mixture_accepts(n: int, alpha: float) -> None:
    low, high = count_bounds(n, 0.95, alpha)
    accepted = [s for s in range(n + 1) if mixture(s, n, 0.95) < 1 / alpha]
    assert (low, high) == (min(accepted), max(accepted))
    assert accepted == list(range(low, high + 1))


def test_quantile_cs_on_a_worked_histogram() -> None:
    # 1000 values, one per bin 100..1099: the k-th smallest is in bin 99 + k.
    histogram = {i: 1 for i in range(100, 1100)}
    low_count, high_count = count_bounds(1000, 0.95, 0.025)
    lower, upper, n = quantile_cs(histogram, 0.95, 0.025)
    assert n == 1000
    assert lower == bin_edges(99 + low_count)[0]
    assert upper == bin_edges(99 + high_count + 1)[1]
    assert lower < bin_edges(1049)[0] < upper  # the sample's own p95 is inside
    # Too few values for an upper bound on a p95: infinite, never a pass.
    assert quantile_cs({120: 20}, 0.95, 0.025)[1] == math.inf
    assert quantile_cs({}, 0.95, 0.025) == (0.0, math.inf, 0)


def test_quantile_cs_covers_the_true_p95_over_a_stream() -> None:
    rng = np.random.default_rng(5)
    true_p95 = float(stats.lognorm.ppf(0.95, 0.5, scale=200.0))
    missed = 0
    for _ in range(100):
        values = 200.0 * np.exp(0.5 * rng.standard_normal(3000))
        histogram: dict[int, int] = {}
        out = False
        for n in range(100, 3001, 100):
            for i, c in latency_histogram(values[n - 100 : n]).items():
                histogram[i] = histogram.get(i, 0) + c
            lower, upper, _ = quantile_cs(histogram, 0.95, 0.1)
            out = out or not lower <= true_p95 <= upper
        missed += out
    assert missed / 100 <= 0.1


def test_latency_bins() -> None:
    assert latency_bin(0.4) == 0
    assert latency_bin(1.0) == 0
    assert latency_bin(200.0) == math.floor(math.log(200.0) / math.log(1.02))
    low, high = bin_edges(latency_bin(200.0))
    assert low <= 200.0 < high
    assert high / low == pytest.approx(1.02)
    assert latency_histogram([200.0, 200.5, 950.0]) == {
        latency_bin(200.0): 2,
        latency_bin(950.0): 1,
    }
