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
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from harness.load.access_log import LogEntry, replay_arrivals
from harness.load.arrivals import arrival_times
from model.scenario import LoadSpec

__all__ = [
    "SCHEDULE_MESSAGE",
    "START_ALLOWANCE_S",
    "START_TIMEOUT_S",
    "WORKER_READY",
    "ArrivalSchedule",
    "DueArrivals",
    "Flag",
    "planned_arrivals",
    "schedule_start",
    "segment_refusal",
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


def segment_refusal(index: int, workers: int) -> str:
    """Why a worker with Locust's index ``index`` (-1: none) may not run a segment of an
    open-model run of ``workers`` workers: its arrivals would duplicate another worker's.

    >>> segment_refusal(1, 1)[:60]
    'this Locust worker has index 1, but an open-model run of 1 w'
    """
    known = f"index {index}" if index >= 0 else "no index (the master did not send one)"
    return (
        f"this Locust worker has {known}, but an open-model run of "
        f"{workers} worker(s) (DOORBUSTER_WORKERS) needs 0..{workers - 1}: refusing to start, "
        "as its arrivals would duplicate another worker's. Start exactly DOORBUSTER_WORKERS "
        "workers against a fresh master."
    )


def planned_arrivals(
    load: LoadSpec,
    *,
    seed: int,
    replay: Sequence[LogEntry] = (),
    segment: int = 0,
    segments: int = 1,
) -> Iterator[tuple[float, tuple[str, ...]]]:
    """A segment's arrivals as ``(offset_s, lanes)``: at each arrival time of an evenly spaced
    or Poisson schedule one arrival per lane of the load; replayed, one arrival to the lane
    its log entry's path gives.  Bounded by the load's duration."""
    if load.arrivals == "replay":
        if load.replay is None:
            raise ValueError("arrivals: replay needs its replay: section")
        for offset, lane in replay_arrivals(
            replay, load.replay.lanes, speed=load.replay.speed, duration_s=load.duration_s,
            segment=segment, segments=segments,
        ):  # fmt: skip
            yield offset, (lane,)
        return
    stages = [(stage.duration, stage.rate) for stage in load.stages]
    for offset in arrival_times(stages, segment, segments, process=load.arrivals, seed=seed):
        yield offset, load.lanes


class DueArrivals:
    """How many arrivals of a schedule were due by a time: it walks its own copy of the
    schedule as time goes on (each arrival once, whatever the sampling), so it knows what was
    due even when the generator sending them has fallen behind.

    >>> due = DueArrivals(iter([(0.0, ("sync", "async")), (0.5, ("sync",)), (2.0, ("async",))]))
    >>> due.by(-1.0), due.by(0.5), due.by(1.9), due.by(60.0)
    (0, 3, 3, 4)
    """

    def __init__(self, arrivals: Iterator[tuple[float, tuple[str, ...]]]) -> None:
        self._arrivals = arrivals
        self._next = next(arrivals, None)
        self.due = 0

    def by(self, elapsed_s: float) -> int:
        """Arrivals (one per lane) at most ``elapsed_s`` from the start; never decreases."""
        while self._next is not None and self._next[0] <= elapsed_s:
            self.due += len(self._next[1])
            self._next = next(self._arrivals, None)
        return self.due


class ArrivalSchedule:
    """This process's part of the one arrival schedule: which segment it runs, and when the
    schedule starts."""

    def __init__(self, started: Flag, *, seed: int = 0, replay: Sequence[LogEntry] = ()) -> None:
        self.segment = 0
        self.segments = 1
        self.start: float | None = None
        self.started = started
        self.seed = seed  # the run's: every segment draws the same Poisson schedule from it
        self.replay = tuple(replay)
        self._due: DueArrivals | None = None
        self.claimed = False  # one generator per process, however many Arrivals users land here
        self.generating = False  # claimed and not through the schedule yet
        self.ready: set[str] = set()  # in the master: workers whose generator waits for the start

    def reset(self) -> None:
        self.start = None
        self._due = None
        self.started.clear()
        self.claimed = self.generating = False
        self.ready.clear()

    def begin(self, start: float) -> None:
        self.start = start
        self._due = None
        self.started.set()

    def arrivals(self, load: LoadSpec) -> Iterator[tuple[float, tuple[str, ...]]]:
        """This process's segment of the schedule, as ``(offset_s, lanes)``."""
        return planned_arrivals(
            load, seed=self.seed, replay=self.replay, segment=self.segment, segments=self.segments
        )

    def due(self, load: LoadSpec, now: float) -> int:
        """Arrivals (one per lane) of this segment due by ``now``: 0 for a closed model
        (nothing is scheduled) or before the schedule has a start."""
        if load.model != "open" or self.start is None:
            return 0
        if self._due is None:
            self._due = DueArrivals(self.arrivals(load))
        return self._due.by(now - self.start)

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
        """This process's segment, from the start: at each arrival time, its arrivals (one per
        lane, or a replayed one's lane) handed to ``arrive(lane, intended_start)``; sleeps only
        when ahead of the schedule."""
        start = self.wait_for_start(START_TIMEOUT_S)
        for offset, lanes in self.arrivals(load):
            intended = start + offset
            delay = intended - clock()
            if delay > 0:
                sleep(delay)
            for lane in lanes:
                arrive(lane, intended)
