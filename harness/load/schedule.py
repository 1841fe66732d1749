"""The one arrival schedule of an open-model run, shared by its generators.

Worker i of N takes arrivals i, i + N, i + 2N, ... (k6's execution segments), so the merged
arrivals are exactly the single-process schedule, not N copies of it in phase.  In a
distributed run the master picks the start once every worker's generator is ready and sends
it to all, so the segments interleave from the first arrival and the chaos timeline starts
with them.  The flag the generator waits on is passed in (a gevent event in the locustfile),
so nothing here imports gevent.

    >>> schedule_start(0.1, start_at=None, now=100.00004)
    100.1
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

from harness.load.arrivals import arrival_times
from model.scenario import LoadSpec

__all__ = [
    "SCHEDULE_MESSAGE",
    "START_ALLOWANCE_S",
    "START_TIMEOUT_S",
    "WORKER_READY",
    "ArrivalSchedule",
    "Flag",
    "schedule_start",
]

# How long a distributed run waits for every worker's generator to be ready to start.
START_TIMEOUT_S = 30.0
# From the master's start message to the first arrival: time for the message to reach the
# workers, so none of them starts late and sends its first arrivals in a catch-up burst.
START_ALLOWANCE_S = 0.1
# The messages between master and workers: a worker's generator is ready; the start.
WORKER_READY = "doorbuster_ready"
SCHEDULE_MESSAGE = "doorbuster_schedule"


class Flag(Protocol):
    """Set once the start is known; a generator waits on it (``gevent.event.Event`` is one)."""

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def wait(self, timeout: float) -> bool: ...


def schedule_start(after_s: float, *, start_at: float | None, now: float) -> float:
    """``start_at`` if set, else a start ``after_s`` from ``now``.

    The start is a Unix time on a 0.1 ms tick: the log keeps intended starts to 0.1 ms,
    and the first arrival, at the start itself, must not read as before the timeline's t0.
    A start set from outside lets a benchmark know the schedule without asking the generator;
    if it has passed by then, the arrivals due are sent at once, late, and measured so.
    """
    return math.floor((start_at or now + after_s) * 10_000) / 10_000


class ArrivalSchedule:
    """This process's part of the one arrival schedule: which segment it runs, and when the
    schedule starts."""

    def __init__(self, started: Flag) -> None:
        self.segment = 0
        self.segments = 1
        self.start: float | None = None
        self.started = started
        self.claimed = False  # one generator per process, however many Arrivals users land here
        self.generating = False  # claimed and not through the schedule yet
        self.ready: set[str] = set()  # in the master: workers whose generator waits for the start

    def reset(self) -> None:
        self.start = None
        self.started.clear()
        self.claimed = self.generating = False
        self.ready.clear()

    def begin(self, start: float) -> None:
        self.start = start
        self.started.set()

    def worker_ready(self, worker_id: str, workers: int) -> bool:
        """In the master: a worker's generator is ready; True when it is the last one awaited
        and the schedule has not started yet (so it is time to pick the start)."""
        self.ready.add(worker_id)
        return self.start is None and len(self.ready) >= workers

    def wait_for_start(self, timeout_s: float) -> float:
        """The start, once known; RuntimeError if it does not come within ``timeout_s``."""
        if not self.started.wait(timeout=timeout_s) or self.start is None:
            raise RuntimeError(f"doorbuster: no arrival schedule start from the master within {timeout_s:g}s")
        return self.start

    def send(
        self,
        load: LoadSpec,
        *,
        arrive: Callable[[str, float], None],
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        """This process's segment, from the start: at each arrival time, one arrival per lane
        handed to ``arrive(lane, intended_start)``; sleeps only when ahead of the schedule."""
        start = self.wait_for_start(START_TIMEOUT_S)
        stages = [(stage.duration, stage.rate) for stage in load.stages]
        for offset in arrival_times(stages, self.segment, self.segments):
            intended = start + offset
            delay = intended - clock()
            if delay > 0:
                sleep(delay)
            for lane in load.lanes:
                arrive(lane, intended)
