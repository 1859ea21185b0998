"""Statistics for comparing a candidate model with the baseline, as pure functions.

The shadow report and the rollout gates use these: an agreement rate with a Wilson score interval,
McNemar's exact test on paired correct/incorrect outcomes, the Jensen-Shannon distance between two
score distributions over the union of their classes, and how many more documents an interval
needs to reach a target width. No I/O; scipy does the distributions and the distance, imported
where they are used: importing scipy.stats costs about a second of CPU, which every ``baton``
command and worker process that never computes a statistic would otherwise pay at start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    from scipy import stats

    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (better than the normal one near 0 and 1)."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within [0, {n}], got {successes}")
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_first_right: int, only_second_right: int) -> float:
    """Two-sided p-value of McNemar's exact test from the discordant pairs.

    ``only_first_right``: documents the first arm got right and the second wrong; and the reverse.
    Concordant pairs carry no information about a difference, so they are not arguments.
    """
    if only_first_right < 0 or only_second_right < 0:
        raise ValueError("counts must not be negative")
    n = only_first_right + only_second_right
    if n == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(only_first_right, n, 0.5, alternative="two-sided").pvalue)


def jensen_shannon(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two score distributions.

    Classes only one side knows count as zero on the other side; each side is renormalized.
    """
    classes = sorted(set(p) | set(q))
    a = [max(0.0, float(p.get(c, 0.0))) for c in classes]
    b = [max(0.0, float(q.get(c, 0.0))) for c in classes]
    if not sum(a) or not sum(b):
        raise ValueError("both distributions need some mass")
    from scipy.spatial import distance

    return min(1.0, float(distance.jensenshannon(a, b, base=2)))


def documents_for_width(
    successes: int, n: int, width: float, confidence: float = 0.95, limit: int = 10_000_000
) -> int:
    """How many more documents the Wilson interval needs to be at most ``width`` wide,
    assuming the observed rate holds (0 when it already is)."""
    if not 0.0 < width < 1.0:
        raise ValueError(f"width must be within (0, 1), got {width}")
    rate = successes / n if n else 0.5

    def wide(total: int) -> float:
        low, high = wilson_interval(round(rate * total), total, confidence)
        return high - low

    if n and wide(n) <= width:
        return 0
    low, high = max(n, 1), max(n, 1)
    while wide(high) > width:  # exponential search for an upper bound, then bisection
        low, high = high, high * 2
        if high > limit:
            return limit - n
    while low < high:
        mid = (low + high) // 2
        if wide(mid) <= width:
            high = mid
        else:
            low = mid + 1
    return max(0, high - n)
