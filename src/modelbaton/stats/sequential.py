"""Anytime-valid confidence sequences for the rollout gates, as pure functions (pure Python math,
no I/O, no numpy or scipy: the controller workflow calls them inside Temporal's sandbox).

A confidence sequence (CS) at level ``alpha`` is a sequence of intervals that contains the true
value at every sample size at once with probability at least ``1 - alpha``: a gate may look after
every document and stop whenever it likes without inflating its error rate.

- :func:`bernoulli_cs`: the conjugate beta-binomial mixture CS for a proportion (Robbins' mixture
  martingale; Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric, nonasymptotic
  confidence sequences", Ann. Statist. 2021, section 3 and Proposition 6 / appendix on the
  beta-binomial mixture). For a candidate proportion ``p`` the mixture of likelihood ratios

      M_n(p) = B(a + S_n, b + n - S_n) / B(a, b) / (p^S_n (1 - p)^(n - S_n))

  is a nonnegative martingale with mean 1 under ``p``, so by Ville's inequality
  ``P(exists n: M_n(p) >= 1/alpha) <= alpha``, and ``{p : M_n(p) < 1/alpha}`` is a CS. It is
  exact for Bernoulli data (no asymptotics, no variance bound), adapts to rates near 0 (failure
  rates of a percent), and ``log M_n`` is convex in ``p``, so the set is one interval found by
  bisection. The prior is Jeffreys' Beta(1/2, 1/2).
- :func:`difference_cs`: a CS for ``p_1 - p_2`` of two independent arms of any sizes, from one
  CS per arm at ``alpha / 2`` each (a union bound: [lo_1 - hi_2, hi_1 - lo_2]).
- :func:`quantile_cs`: a CS for a quantile ``q`` (the p95 latency) from order statistics. The
  number of observations at or below the true quantile is Binomial(n, q) for a continuous
  distribution, so the same mixture martingale evaluated at the known ``q`` bounds that count
  at every n at once, ``l_n <= S_n <= u_n``; hence ``X_(l_n) <= quantile < X_(u_n + 1)`` (Howard
  and Ramdas, "Sequential estimation of quantiles with applications to A/B-testing and best-arm
  identification", Bernoulli 2022, the fixed-quantile construction). Latencies come binned in a
  log-spaced histogram (:func:`latency_histogram`, 2 % wide bins); a lower bound takes its bin's
  lower edge and an upper bound its bin's upper edge, so binning only widens the interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import lru_cache

PRIOR = 0.5  # Beta(1/2, 1/2): Jeffreys' prior for the mixture
_ITERATIONS = 42  # bisection steps: an interval of width 1 shrinks below 2.3e-13
BIN_RATIO = 1.02  # latency histogram bins are [BIN_RATIO**i, BIN_RATIO**(i + 1)) milliseconds
_LOG_BIN = math.log(BIN_RATIO)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")


def _betaln(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def log_mixture(successes: int, n: int, p: float, prior: float = PRIOR) -> float:
    """``log M_n(p)``: the beta-binomial mixture martingale's log at ``p`` (in (0, 1))."""
    failures = n - successes
    value = _betaln(prior + successes, prior + failures) - _betaln(prior, prior)
    if successes:
        value -= successes * math.log(p)
    if failures:
        value -= failures * math.log1p(-p)
    return value


def _check_counts(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")


@lru_cache(maxsize=200_000)
def bernoulli_cs(successes: int, n: int, alpha: float) -> tuple[float, float]:
    """The CS for a proportion after ``successes`` of ``n``: ``(0, 1)`` with no data."""
    _check_counts(successes, n)
    _check_alpha(alpha)
    if n == 0:
        return 0.0, 1.0
    threshold = math.log(1.0 / alpha)
    centre = successes / n

    def outside(p: float) -> bool:
        return log_mixture(successes, n, p) >= threshold

    low = 0.0
    if successes and outside(1e-300):
        inside, out = centre, 0.0  # the root lies between the MLE and 0
        for _ in range(_ITERATIONS):
            mid = (inside + out) / 2
            if outside(mid):
                out = mid
            else:
                inside = mid
        low = out
    high = 1.0
    if successes < n and outside(1.0 - 1e-16):
        inside, out = centre, 1.0
        for _ in range(_ITERATIONS):
            mid = (inside + out) / 2
            if outside(mid):
                out = mid
            else:
                inside = mid
        high = out
    return low, high


def difference_cs(
    successes_1: int, n_1: int, successes_2: int, n_2: int, alpha: float
) -> tuple[float, float]:
    """A CS for ``p_1 - p_2`` of two independent arms: each arm's CS at ``alpha / 2``."""
    lo_1, hi_1 = bernoulli_cs(successes_1, n_1, alpha / 2)
    lo_2, hi_2 = bernoulli_cs(successes_2, n_2, alpha / 2)
    return lo_1 - hi_2, hi_1 - lo_2


@lru_cache(maxsize=100_000)
def count_bounds(n: int, q: float, alpha: float) -> tuple[int, int]:
    """``(l_n, u_n)``: the counts ``s`` with ``M_n(q) < 1/alpha`` for ``s`` successes of ``n``
    at the known rate ``q``: where Binomial(n, q) counts stay, at every n at once, with
    probability at least ``1 - alpha``."""
    _check_alpha(alpha)
    if not 0.0 < q < 1.0:
        raise ValueError(f"the quantile must be within (0, 1), got {q}")
    if n <= 0:
        return 0, 0
    threshold = math.log(1.0 / alpha)

    def inside(s: int) -> bool:
        return log_mixture(s, n, q) < threshold

    mode = min(n, max(0, round(n * q)))
    if not inside(mode):  # no count is plausible (only at a huge alpha): claim nothing
        return 0, n
    # log M is convex in s: bisect for the first count inside below the mode, the last above.
    lo, hi = 0, mode
    while lo < hi:
        mid = (lo + hi) // 2
        if inside(mid):
            hi = mid
        else:
            lo = mid + 1
    low = lo
    lo, hi = mode, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if inside(mid):
            lo = mid
        else:
            hi = mid - 1
    return low, lo


def latency_bin(ms: float) -> int:
    """The histogram bin of a latency in milliseconds (bin 0 also holds everything below 1 ms)."""
    if ms < 0 or math.isnan(ms):
        raise ValueError(f"a latency must be a non-negative number, got {ms}")
    return 0 if ms < 1.0 else int(math.log(ms) / _LOG_BIN)


def bin_edges(index: int) -> tuple[float, float]:
    """``[lower, upper)`` milliseconds of a histogram bin."""
    lower = 0.0 if index <= 0 else BIN_RATIO**index
    return lower, BIN_RATIO ** (index + 1)


def latency_histogram(latencies_ms: Iterable[float]) -> dict[int, int]:
    """Counts per log-spaced bin: what an arm's metrics carry for the latency CS."""
    counts: dict[int, int] = {}
    for ms in latencies_ms:
        i = latency_bin(ms)
        counts[i] = counts.get(i, 0) + 1
    return counts


def _order_statistic_bin(histogram: list[tuple[int, int]], rank: int) -> int:
    """The bin holding the ``rank``-th smallest value (1-based) of a sorted histogram."""
    seen = 0
    for index, count in histogram:
        seen += count
        if seen >= rank:
            return index
    raise ValueError(f"rank {rank} exceeds the {seen} values")


def quantile_cs(histogram: Mapping[int, int], q: float, alpha: float) -> tuple[float, float, int]:
    """``(lower, upper, n)``: a CS for the ``q``-quantile of latencies binned as
    :func:`latency_histogram` bins them; ``upper`` is ``inf`` while too few values are in."""
    items = sorted((int(i), int(c)) for i, c in histogram.items() if c > 0)
    n = sum(c for _, c in items)
    if n == 0:
        return 0.0, math.inf, 0
    low_count, high_count = count_bounds(n, q, alpha)
    lower = bin_edges(_order_statistic_bin(items, low_count))[0] if low_count >= 1 else 0.0
    if high_count + 1 <= n:
        upper = bin_edges(_order_statistic_bin(items, high_count + 1))[1]
    else:
        upper = math.inf
    return lower, upper, n
