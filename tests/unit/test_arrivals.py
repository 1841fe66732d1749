from __future__ import annotations

import itertools
import math

import pytest

from harness.load.arrivals import arrival_times


def test_the_rate_holds_exactly_over_each_stage() -> None:
    times = list(arrival_times([(10.0, 500.0)]))
    assert len(times) == 5000
    assert times[1] - times[0] == 0.002
    assert times[-1] < 10.0


def test_stages_and_segments_split_the_rate() -> None:
    whole = list(arrival_times([(2.0, 10.0), (2.0, 30.0)]))
    assert len(whole) == 80
    assert sum(1 for t in whole if t < 2.0) == 20
    halves = list(arrival_times([(2.0, 10.0), (2.0, 30.0)], segment=0, segments=2))
    assert len(halves) == 40


@pytest.mark.parametrize("segments", [2, 3, 7])
def test_the_segments_merge_into_the_single_schedule_exactly(segments: int) -> None:
    # Fractional rates and a pause, so a segment's share crosses stage boundaries mid-way.
    stages = [(2.0, 10.0), (1.5, 0.0), (3.0, 7.3), (2.0, 31.0)]
    whole = list(arrival_times(stages))
    shares = [list(arrival_times(stages, segment=i, segments=segments)) for i in range(segments)]
    assert sorted(t for share in shares for t in share) == whole
    # Interleaved, not in phase: segment i holds arrivals i, i + N, i + 2N, ...
    for i, share in enumerate(shares):
        assert share == whole[i::segments]


def test_a_segment_outside_the_segments_is_refused() -> None:
    with pytest.raises(ValueError, match=r"segment must be in 0\.\.1 of 2"):
        list(arrival_times([(1.0, 4.0)], segment=2, segments=2))


def test_fractional_rates_carry_over_stage_boundaries() -> None:
    assert len(list(arrival_times([(1.0, 1.5), (1.0, 1.5)]))) == 3


# -- Poisson arrivals: exponential gaps at the stages' rates, seeded --------------------------
def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def test_poisson_arrivals_have_the_stages_mean_rate_and_exponential_gaps() -> None:
    times = list(arrival_times([(200.0, 50.0)], process="poisson", seed=11))
    assert abs(len(times) - 10_000) < 4 * 100  # Poisson: sd sqrt(10,000)
    gaps = _gaps(times)
    mean = sum(gaps) / len(gaps)
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
    assert mean == pytest.approx(0.02, rel=0.05)
    assert sd / mean == pytest.approx(1.0, abs=0.05)  # exponential: cv 1 (evenly spaced: 0)
    assert sum(g < 0.02 * math.log(2) for g in gaps) / len(gaps) == pytest.approx(0.5, abs=0.03)


def test_poisson_arrivals_follow_each_stage_s_rate_and_skip_a_pause() -> None:
    times = list(arrival_times([(100.0, 10.0), (50.0, 0.0), (100.0, 40.0)], process="poisson", seed=3))
    first = [t for t in times if t < 100]
    paused = [t for t in times if 100 <= t < 150]
    last = [t for t in times if t >= 150]
    assert abs(len(first) - 1000) < 4 * math.sqrt(1000)
    assert paused == []
    assert abs(len(last) - 4000) < 4 * math.sqrt(4000)
    assert max(times) < 250


def test_the_same_seed_offers_the_same_arrivals_and_segments_still_merge() -> None:
    stages = [(30.0, 20.0)]
    one = list(arrival_times(stages, process="poisson", seed=42))
    assert one == list(arrival_times(stages, process="poisson", seed=42))
    assert one != list(arrival_times(stages, process="poisson", seed=43))
    merged = sorted(t for s in range(3) for t in arrival_times(stages, s, 3, process="poisson", seed=42))
    assert merged == one
