"""Open-model arrival times for a piecewise-constant rate: evenly spaced, as k6's
constant-arrival-rate executor spaces them, so the rate holds however slow the answers are.

>>> list(arrival_times([(1.0, 4.0)]))
[0.0, 0.25, 0.5, 0.75]
>>> [round(t, 2) for t in arrival_times([(1.0, 2.0), (1.0, 0.0), (1.0, 2.0)])]
[0.0, 0.5, 2.0, 2.5]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

__all__ = ["arrival_times"]


def arrival_times(stages: Sequence[tuple[float, float]], share: float = 1.0) -> Iterator[float]:
    """Offsets in seconds from the start: arrival k is where the integrated rate reaches k.

    ``stages`` are ``(duration_s, rate_per_s)``; ``share`` is this generator's part of the
    rate (1 / number of generators).  Bounded: it ends with the last stage.
    """
    k = 0
    n_start, t_start = 0.0, 0.0
    for duration, rate in stages:
        per_s = rate * share
        n_end = n_start + per_s * duration
        while per_s > 0 and k < n_end - 1e-9:
            yield t_start + (k - n_start) / per_s
            k += 1
        n_start, t_start = n_end, t_start + duration
