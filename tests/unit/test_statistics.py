"""The comparison statistics against published values and values worked out by hand."""

from __future__ import annotations

import math

import pytest

from modelbaton.stats.fixed_sample import (
    documents_for_width,
    jensen_shannon,
    mcnemar_exact,
    wilson_interval,
)

# Newcombe, "Two-sided confidence intervals for the single proportion: comparison of seven
# methods", Statistics in Medicine 17 (1998), Table I, method 3 (score interval, no correction).
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), NEWCOMBE)
def test_wilson_matches_newcombe(x: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(x, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_by_hand_and_refusals() -> None:
    # 8 of 10 at 95 %: centre 0.71675, half-width 0.22658 (worked out by hand).
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    with pytest.raises(ValueError, match="n must be positive"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)


def test_mcnemar_exact_by_hand() -> None:
    # b=2, c=9: P(X <= 2 | n=11, 1/2) = (1 + 11 + 55) / 2048; two-sided doubles it.
    assert mcnemar_exact(2, 9) == pytest.approx(2 * 67 / 2048)
    assert mcnemar_exact(9, 2) == pytest.approx(2 * 67 / 2048)
    # b=0, c=6: 2 * (1/2)^6.
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0


def test_jensen_shannon_by_hand() -> None:
    assert jensen_shannon({"a": 0.7, "b": 0.3}, {"a": 0.7, "b": 0.3}) == pytest.approx(0.0)
    assert jensen_shannon({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)  # disjoint classes
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4):
    # JSD = 1/2 log2(4/3) + 1/2 (1/2 log2(2/3) + 1/2 log2 2), distance = sqrt(JSD).
    jsd = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert jensen_shannon({"a": 1.0}, {"a": 0.5, "b": 0.5}) == pytest.approx(math.sqrt(jsd))
    # A class only one side knows counts as zero on the other (v2 against v3's tax_form).
    v2, v3 = {"a": 0.9, "b": 0.1}, {"a": 0.8, "b": 0.1, "c": 0.1}
    d = jensen_shannon(v2, v3)
    assert 0 < d < 1
    assert d == pytest.approx(jensen_shannon(v3, v2))


def test_documents_for_width() -> None:
    assert documents_for_width(900, 1000, 0.05) == 0  # 0.881..0.917 is already narrower
    more = documents_for_width(45, 50, 0.05)
    low, high = wilson_interval(round(0.9 * (50 + more)), 50 + more)
    assert high - low <= 0.05
    low, high = wilson_interval(round(0.9 * (49 + more)), 49 + more)
    assert high - low > 0.05  # and not one document fewer
