from __future__ import annotations

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
