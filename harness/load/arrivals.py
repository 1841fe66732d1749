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

Or as a Poisson process at the same rates: independent shoppers, exponential gaps, the same
mean.  The gaps come from a generator seeded with the run's seed, so a rerun offers the same
arrivals, and every segment draws the same sequence, so the segments still merge into one:

>>> a = list(arrival_times([(100.0, 4.0)], process="poisson", seed=7))
>>> a == list(arrival_times([(100.0, 4.0)], process="poisson", seed=7))
True
>>> 350 < len(a) < 450, a[:2] != [0.0, 0.25]
(True, True)
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Literal

__all__ = ["arrival_times"]


def _integrated_points(process: Literal["even", "poisson"], seed: int) -> Iterator[float]:
    """Arrival k's position in integrated-rate units (expected arrivals since the start)."""
    if process == "even":
        k = 0
        while True:
            yield float(k)
            k += 1
    rng = random.Random(seed)
    u = 0.0
    while True:
        u += rng.expovariate(1.0)
        yield u


def arrival_times(
    stages: Sequence[tuple[float, float]],
    segment: int = 0,
    segments: int = 1,
    *,
    process: Literal["even", "poisson"] = "even",
    seed: int = 0,
) -> Iterator[float]:
    """Offsets in seconds from the start: arrival k is where the integrated rate reaches its
    k-th point (k itself when even; a sum of unit exponential gaps when Poisson, which makes
    a Poisson process of the stages' piecewise-constant rate).

    ``stages`` are ``(duration_s, rate_per_s)``.  Generator ``segment`` of ``segments`` gets
    arrivals ``segment``, ``segment + segments``, ... of the whole schedule, so the merged
    arrivals of all segments are exactly the single-generator schedule.  Bounded: it ends
    with the last stage.
    """
    if segments < 1 or not 0 <= segment < segments:
        raise ValueError(f"segment must be in 0..{segments - 1} of {segments} segments, not {segment}")
    remaining = iter(stages)
    n_start = n_end = t_start = 0.0
    rate = 0.0
    for k, u in enumerate(_integrated_points(process, seed)):
        while u >= n_end - 1e-9:  # past this stage (a stage at rate 0 holds no arrival)
            stage = next(remaining, None)
            if stage is None:
                return
            t_start += (n_end - n_start) / rate if rate > 0 else 0.0
            n_start = n_end
            duration, rate = stage
            n_end = n_start + rate * duration
            if rate <= 0:
                t_start += duration
        if k % segments == segment:
            yield t_start + (u - n_start) / rate
