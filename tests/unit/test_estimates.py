"""Percentile intervals against an independent exact binomial sum, and the other intervals."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from harness.analysis.estimates import (
    count_rate_interval,
    percentile,
    percentile_interval,
    percentile_ranks,
    proportion_interval,
    samples_to_bound,
)


def _cumulative(n: int, q: Fraction) -> list[Fraction]:
    """P(B <= k) for k = 0..n, B ~ binomial(n, q), exactly (integer sums over a common denominator)."""
    a, b = q.numerator, q.denominator
    total, out = 0, []
    for i in range(n + 1):
        total += math.comb(n, i) * a**i * (b - a) ** (n - i)
        out.append(Fraction(total, b**n))
    return out


def _reference_ranks(n: int, q: Fraction) -> tuple[int | None, int | None]:
    """Equal-tailed ranks by brute force: l the largest with P(B < l) <= 2.5%, u the smallest
    with P(B >= u) <= 2.5%."""
    cdf, tail = _cumulative(n, q), Fraction(1, 40)
    lows = [r for r in range(1, n + 1) if cdf[r - 1] <= tail]
    highs = [r for r in range(1, n + 1) if 1 - cdf[r - 1] <= tail]
    return (max(lows) if lows else None), (min(highs) if highs else None)


def test_the_median_of_100_is_bounded_by_the_40th_and_61st_values() -> None:
    assert percentile_ranks(100, 0.5) == (40, 61)  # Conover's table: ranks 40 and 61, 96.5%
    cdf = _cumulative(100, Fraction(1, 2))
    coverage = cdf[60] - cdf[39]
    assert 0.96 < coverage < 0.97


@pytest.mark.parametrize(
    ("n", "q"),
    [(100, "1/2"), (20, "1/2"), (5, "1/2"), (71, "19/20"), (72, "19/20"), (200, "19/20"), (367, "99/100"),
     (368, "99/100"), (1000, "99/100"), (12, "99/100")],
)  # fmt: skip
def test_ranks_match_an_exact_binomial_sum(n: int, q: str) -> None:
    exact = Fraction(q)
    low, high = percentile_ranks(n, float(exact))
    assert (low, high) == _reference_ranks(n, exact)
    if low is not None and high is not None:
        cdf = _cumulative(n, exact)
        assert cdf[high - 1] - cdf[low - 1] >= Fraction(95, 100)  # P(l <= B < u)


def test_too_few_samples_leave_the_interval_open() -> None:
    assert samples_to_bound(0.99, above=True) == 368
    assert samples_to_bound(0.95, above=True) == 72
    est = percentile_interval([0.1] * 12, 0.99)
    assert est.value == 0.1 and est.low == 0.1 and est.high == math.inf and est.n == 12
    assert percentile_interval([], 0.5).n == 0 and math.isnan(percentile_interval([], 0.5).value)


def test_the_interval_is_made_of_samples_around_the_estimate() -> None:
    values = [i / 1000 for i in range(1000, 0, -1)]
    est = percentile_interval(values, 0.99)
    assert est.value == percentile(values, 0.99) == 0.99
    assert est.low < est.value < est.high and est.low in values and est.high in values


def test_proportion_and_count_rate_intervals() -> None:
    all_failed = proportion_interval(20, 20)
    assert all_failed.value == 1.0 and all_failed.high == 1.0 and 0.83 < all_failed.low < 0.84  # Wilson
    assert math.isinf(proportion_interval(0, 0).high)
    none = count_rate_interval(0, 10.0)
    assert none.value == 0.0 and none.low == 0.0 and 0.38 < none.high < 0.39  # z^2 / 10 s
    assert math.isnan(count_rate_interval(3, 0.0).value)


def test_a_mean_of_a_handful_of_values_gets_students_interval_not_the_normal_one() -> None:
    """Two values 1.0 and 1.6: the normal quantile would bound the mean under 1.89, a bound of
    2 s decided on two samples; Student's t with one degree of freedom reaches 5.1."""
    from harness.analysis.estimates import mean_interval

    est = mean_interval([1.0, 1.6])
    assert est.high > 5.0 and est.low < -2.0
    many = mean_interval([1.0, 1.6] * 100)  # 199 degrees of freedom: close to the normal
    se = 0.3 * (200 / 199) ** 0.5 / 200**0.5
    assert 1.96 * se < many.high - many.value < 1.98 * se
