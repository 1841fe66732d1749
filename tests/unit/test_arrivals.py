from __future__ import annotations

from harness.arrivals import arrival_times


def test_the_rate_holds_exactly_over_each_stage() -> None:
    times = list(arrival_times([(10.0, 500.0)]))
    assert len(times) == 5000
    assert times[1] - times[0] == 0.002
    assert times[-1] < 10.0


def test_stages_and_shares_split_the_rate() -> None:
    whole = list(arrival_times([(2.0, 10.0), (2.0, 30.0)]))
    assert len(whole) == 80
    assert sum(1 for t in whole if t < 2.0) == 20
    halves = list(arrival_times([(2.0, 10.0), (2.0, 30.0)], share=0.5))
    assert len(halves) == 40


def test_fractional_rates_carry_over_stage_boundaries() -> None:
    assert len(list(arrival_times([(1.0, 1.5), (1.0, 1.5)]))) == 3
