"""Open-model arrival times for a piecewise-constant rate: evenly spaced, as k6's
constant-arrival-rate executor spaces them, so the rate holds however slow the answers are.

>>> list(arrival_times([(1.0, 4.0)]))
[0.0, 0.25, 0.5, 0.75]
>>> [round(t, 2) for t in arrival_times([(1.0, 2.0), (1.0, 0.0), (1.0, 2.0)])]
[0.0, 0.5, 2.0, 2.5]

With several generators, each takes its segment of the one schedule (k6's execution
segments), so their arrivals interleave instead of coming in bursts of N:

>>> list(arrival_times([(1.0, 4.0)], segment=1, segments=2))
[0.25, 0.75]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

__all__ = ["arrival_times"]


def arrival_times(
    stages: Sequence[tuple[float, float]], segment: int = 0, segments: int = 1
) -> Iterator[float]:
    """Offsets in seconds from the start: arrival k is where the integrated rate reaches k.

    ``stages`` are ``(duration_s, rate_per_s)``.  Generator ``segment`` of ``segments`` gets
    arrivals ``segment``, ``segment + segments``, ... of the whole schedule, so the merged
    arrivals of all segments are exactly the single-generator schedule.  Bounded: it ends
    with the last stage.
    """
    if segments < 1 or not 0 <= segment < segments:
        raise ValueError(f"segment must be in 0..{segments - 1} of {segments} segments, not {segment}")
    k = 0
    n_start, t_start = 0.0, 0.0
    for duration, rate in stages:
        n_end = n_start + rate * duration
        while rate > 0 and k < n_end - 1e-9:
            if k % segments == segment:
                yield t_start + (k - n_start) / rate
            k += 1
        n_start, t_start = n_end, t_start + duration
