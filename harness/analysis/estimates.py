"""Figures with their uncertainty: a point estimate and a 95% confidence interval.

One percentile function for the project (:func:`percentile`, nearest rank), and the
intervals the verdicts are decided on:

- a percentile's interval is distribution-free, from order statistics: for the q-quantile of
  n samples, the number B of samples below the true quantile is binomial(n, q), so
  ``[x_(l), x_(u)]`` covers it with probability P(l <= B < u).  The ranks are equal-tailed:
  l is the largest rank with P(B < l) <= 2.5% and u the smallest with P(B >= u) <= 2.5%
  (n=100, q=0.5: ranks 40 and 61, coverage 96.5%).  When no rank qualifies on a side, the
  interval is unbounded on that side: a p99 is bounded from above only from 368 samples,
  a p95 from 72, a p50 from 6 (:func:`samples_to_bound`).
- a rate's (a proportion of attempts) is Wilson's score interval;
- a count per second's is the score interval of a Poisson count.

>>> percentile_interval([float(i) for i in range(1, 101)], 0.5).interval
(40.0, 61.0)
>>> percentile_interval([1.0] * 12, 0.99).high
inf
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Estimate",
    "count_rate_interval",
    "mean_interval",
    "percentile",
    "percentile_interval",
    "percentile_ranks",
    "proportion_interval",
    "samples_to_bound",
]

LEVEL = 0.95
_Z = 1.959963984540054  # the standard normal's 97.5% quantile


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval; ``low``/``high`` are -inf/inf when the data
    do not bound that side, and ``value`` is NaN when there are no data."""

    value: float
    low: float
    high: float
    n: int

    @property
    def interval(self) -> tuple[float, float]:
        return self.low, self.high

    def as_json(self) -> dict[str, float | int | None]:
        def finite(x: float) -> float | None:
            return round(x, 6) if math.isfinite(x) else None

        return {"value": finite(self.value), "low": finite(self.low), "high": finite(self.high), "n": self.n}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _binomial_pmf(n: int, q: float) -> list[float]:
    # In log space, so n in the hundreds of thousands neither overflows nor underflows.
    log_q, log_1q = math.log(q), math.log1p(-q)
    log_n = math.lgamma(n + 1)
    return [
        math.exp(log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q + (n - k) * log_1q)
        for k in range(n + 1)
    ]


def percentile_ranks(n: int, q: float, level: float = LEVEL) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) of the order statistics bounding the q-quantile of n samples at
    ``level``, equal-tailed; None on a side no rank bounds."""
    if n <= 0 or not 0 < q < 1:
        return None, None
    tail = (1 - level) / 2
    pmf = _binomial_pmf(n, q)
    low: int | None = None
    below = 0.0  # P(B < l)
    for rank in range(1, n + 1):
        below += pmf[rank - 1]
        if below > tail:
            break
        low = rank
    high: int | None = None
    above = 0.0  # P(B >= u)
    for rank in range(n, 0, -1):
        above += pmf[rank]
        if above > tail:
            break
        high = rank
    return low, high


def samples_to_bound(q: float, *, above: bool, level: float = LEVEL) -> int:
    """The fewest samples that bound the q-quantile from above (q^n <= (1-level)/2: the largest
    sample does) or from below ((1-q)^n <= (1-level)/2: the smallest does)."""
    return math.ceil(math.log((1 - level) / 2) / math.log(q if above else 1 - q))


def percentile_interval(values: Sequence[float], q: float) -> Estimate:
    """The q-quantile of ``values`` (nearest rank) and its distribution-free 95% interval."""
    ordered = sorted(values)
    n = len(ordered)
    low, high = percentile_ranks(n, q)
    return Estimate(
        value=percentile(ordered, q),
        low=ordered[low - 1] if low is not None else -math.inf,
        high=ordered[high - 1] if high is not None else math.inf,
        n=n,
    )


def proportion_interval(successes: int, trials: int) -> Estimate:
    """``successes / trials`` with Wilson's 95% score interval; NaN and unbounded for none."""
    if trials <= 0:
        return Estimate(math.nan, -math.inf, math.inf, 0)
    p = successes / trials
    z2 = _Z * _Z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = _Z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), trials)


def count_rate_interval(count: int, seconds: float) -> Estimate:
    """``count / seconds`` with the 95% score interval of a Poisson count: the means mu with
    (count - mu)^2 <= z^2 mu."""
    if seconds <= 0:
        return Estimate(math.nan, -math.inf, math.inf, count)
    z2 = _Z * _Z
    root = _Z * math.sqrt(count + z2 / 4)
    return Estimate(
        count / seconds,
        max(0.0, count + z2 / 2 - root) / seconds,
        (count + z2 / 2 + root) / seconds,
        count,
    )


def mean_interval(values: Sequence[float]) -> Estimate:
    """The mean with Student's t 95% interval (needs two values to bound it)."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, -math.inf, math.inf, 0)
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, -math.inf, math.inf, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = student_t975(n - 1) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


# Student's t, 97.5% quantile, for 1 to 30 degrees of freedom: with a handful of values the
# normal quantile (1.96) would make the interval far too narrow to decide anything on.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def student_t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (beyond 30, the
    Cornish-Fisher expansion around the normal quantile, within 0.001).

    >>> student_t975(1), student_t975(30), round(student_t975(120), 3)
    (12.706, 2.042, 1.98)
    """
    if df < 1:
        raise ValueError("the t distribution needs at least one degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
