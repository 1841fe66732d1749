"""A run's counter figures, taken per process and reset-aware.

Retry amplification and the broker's redeliveries and duplicates are increases of counters that
live in several processes. A process restarted mid-run (the fault suite does it on purpose)
starts its counters again from 0, so a raw ``after - before`` over the summed processes goes
negative or short. Instead each process is read through the run, and its increase is summed
reading to reading by Prometheus's own rule for ``increase()``: after a drop, or when the
process's ``process_start_time_seconds`` changed (a restart that climbed past the old value),
the new value counts from 0. A figure for which some process's increase can not be known is
marked incomplete, with the processes missing.

The attempts that went out to each dependency are also kept per reading (:func:`attempt_timeline`),
so the retry amplification at one hop can be had over any window of the run, offline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.metrics.scrape import scrape
from harness.records.schema import AttemptTimeline
from model import metric_names as names
from model.errors import MetricsUnreadable
from model.topology import LANES, ProcessSpec, Topology

__all__ = [
    "BROKER_COUNTERS",
    "SENT_OUTCOMES",
    "CounterSampler",
    "Increase",
    "ProcessReading",
    "Reading",
    "RunCounters",
    "Series",
    "attempt_timeline",
    "increase",
]

# Counters of the broker's behaviour, summed over the async lane's processes: name in the
# summary -> metric.
BROKER_COUNTERS = {
    "messages_lost": names.BROKER_MESSAGES_LOST,
    "redelivered": names.WORKER_MESSAGES_REDELIVERED,
    "duplicates": names.WORKER_DUPLICATE_MESSAGES,
    "out_of_order": names.WORKER_MESSAGES_OUT_OF_ORDER,
}
ATTEMPTS = names.DOWNSTREAM_CALL_ATTEMPTS
ORDERS = names.ORDER_REQUESTS
START_TIME = "process_start_time_seconds"
# The outcomes of an attempt that went out on the wire; the others (circuit_open, and any
# local refusal) never reached the dependency, so they amplify nothing there.
SENT_OUTCOMES = frozenset({"ok", "http_4xx", "http_5xx", "timeout", "connect_error"})

Series = tuple[str, str]  # (metric name, lane), summed over a process's other labels


@dataclass(frozen=True, kw_only=True)
class ProcessReading:
    """One process's answer to one reading."""

    # process_start_time_seconds; None if the process does not export it
    started_at: float | None
    values: Mapping[Series, float] = field(default_factory=dict)
    # (lane, dependency) -> attempts that went out to it (SENT_OUTCOMES)
    sent: Mapping[tuple[str, str], float] = field(default_factory=dict)
    at: float | None = None  # when it was read (epoch seconds)


# process name -> its answer; None (or absent) when it did not answer
Reading = Mapping[str, ProcessReading | None]


@dataclass(frozen=True, kw_only=True)
class Increase:
    """How much a counter grew over the readings, summed over processes."""

    value: float
    # processes whose part can not be known: the value leaves it out or is short of it
    missing: tuple[str, ...] = ()
    # processes that (re)started during the readings: counted from 0 after the start, and
    # what the old one counted after its last reading is not in (as with Prometheus)
    restarted: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.missing


def increase(
    readings: Sequence[Reading], series: Series, *, processes: Sequence[str], since: float
) -> Increase:
    """The reset-aware increase of ``series`` over ``readings``, summed over ``processes``.

    ``since`` is when the first reading was taken: a process that missed it but started later
    counted everything it shows during the run.

    >>> r = lambda start, v: ProcessReading(started_at=start, values={("c", "x"): v})
    >>> readings = [{"w": r(1.0, 10)}, {"w": r(1.0, 14)}, {"w": r(5.0, 3)}]
    >>> increase(readings, ("c", "x"), processes=["w"], since=2.0)
    Increase(value=7.0, missing=(), restarted=('w',))
    """
    total = 0.0
    missing: list[str] = []
    restarted: list[str] = []
    for process in processes:
        value, known, restart, _ = _one_process(
            [r.get(process) for r in readings], lambda a: a.values.get(series, 0.0), since
        )
        total += value
        if not known:
            missing.append(process)
        if restart:
            restarted.append(process)
    return Increase(value=total, missing=tuple(missing), restarted=tuple(restarted))


def _one_process(
    answers: Sequence[ProcessReading | None], value_of: Callable[[ProcessReading], float], since: float
) -> tuple[float, bool, bool, list[float | None]]:
    """(increase, whether it is known, whether the process restarted, the increase so far at
    each reading: None where it is not known) for one process."""
    total, known, restarted = 0.0, True, False
    so_far: list[float | None] = []
    previous: ProcessReading | None = None
    missed = False  # a reading went unanswered since ``previous``
    for answer in answers:
        if answer is None:
            missed = True
            so_far.append(None)
            continue
        value = value_of(answer)
        if previous is None:
            if missed:
                # No baseline: known only if the process started after the first reading. Its
                # start time rests on the kernel's whole-second boot time and may read up to 1 s
                # early, so the error is on the safe side: called missing, never overcounted.
                if answer.started_at is not None and answer.started_at >= since:
                    total += value
                    restarted = True
                else:
                    known = False
        else:
            before = value_of(previous)
            new_process = (
                answer.started_at is not None
                and previous.started_at is not None
                and answer.started_at != previous.started_at
            )
            if new_process or value < before:
                total += value
                restarted = True
            else:
                total += value - before
                if missed and (answer.started_at is None or previous.started_at is None):
                    # A restart that climbed past the old value could hide in the gap.
                    known = False
        previous, missed = answer, False
        so_far.append(total if known else None)
    if previous is None or missed:
        known = False
    return total, known, restarted, so_far


def _sent_to(hop: tuple[str, str]) -> Callable[[ProcessReading], float]:
    return lambda answer: answer.sent.get(hop, 0.0)


def attempt_timeline(
    readings: Sequence[Reading], *, lanes: Mapping[str, Sequence[str]], since: float
) -> AttemptTimeline:
    """Attempts that went out to each dependency, per lane, counted (reset-aware) from the
    first reading to each reading that has a time; None where a process that counts them had
    not answered, or its count was not known.

    >>> r = lambda at, v: {"w": ProcessReading(started_at=1.0, sent={("async", "email"): v}, at=at)}
    >>> attempt_timeline([r(10.0, 5), r(12.0, 9), {"w": None}], lanes={"async": ["w"]}, since=10.0)
    AttemptTimeline(times=[10.0, 12.0], attempts={'async': {'email': [0.0, 4.0]}})
    """
    timed = [
        (i, min(ats))
        for i, reading in enumerate(readings)
        if (ats := [a.at for a in reading.values() if a is not None and a.at is not None])
    ]
    attempts: dict[str, dict[str, list[float | None]]] = {}
    for lane, processes in lanes.items():
        keys = {
            key for r in readings for a in r.values() if a is not None for key in a.sent if key[0] == lane
        }
        for _, dep in sorted(keys):
            counting = [
                p for p in processes if any((a := r.get(p)) and (lane, dep) in a.sent for r in readings)
            ]
            sent_to = _sent_to((lane, dep))
            steps = [_one_process([r.get(p) for r in readings], sent_to, since)[3] for p in counting]
            attempts.setdefault(lane, {})[dep] = [
                None if any(s[i] is None for s in steps) else sum(s[i] or 0.0 for s in steps)
                for i, _ in timed
            ]
    return AttemptTimeline(times=[t for _, t in timed], attempts=attempts)


@dataclass(frozen=True, kw_only=True)
class RunCounters:
    """The run's counter figures and which of them are incomplete."""

    # lane -> (downstream attempts, order requests) during the run
    attempts: dict[str, tuple[float, float]]
    broker: dict[str, Any]
    # figure ("retry_amplification.async", "broker.redelivered") -> processes it lacks
    incomplete: dict[str, list[str]]
    restarted: list[str]
    attempt_timeline: AttemptTimeline | None = None

    def as_json(self) -> dict[str, Any]:
        return {"incomplete": self.incomplete, "restarted": self.restarted}

    def reading(self) -> list[str]:
        """Plain-language lines for the run's reading: what the figures lack, and why."""
        lines = []
        if self.incomplete:
            lines.append(
                "Incomplete counter figures (a process did not answer a reading, so its part is unknown): "
                + "; ".join(f"{figure} lacks {', '.join(procs)}" for figure, procs in self.incomplete.items())
                + "."
            )
        if self.restarted:
            lines.append(
                f"Restarted during the run: {', '.join(self.restarted)}. Counters count from 0 after a "
                "restart (as Prometheus's increase() does); what the old process counted after its last "
                "reading is not in."
            )
        return lines

    @classmethod
    def from_readings(
        cls, readings: Sequence[Reading], *, lanes: Mapping[str, Sequence[str]], broker: str, since: float
    ) -> RunCounters:
        """``lanes``: lane -> the processes that count its requests, attempts and messages."""
        incomplete: dict[str, list[str]] = {}
        restarted: set[str] = set()

        def grew(name: str, lane: str, figure: str) -> float:
            found = increase(readings, (name, lane), processes=lanes.get(lane, ()), since=since)
            if found.missing:
                known = incomplete.setdefault(figure, [])
                known.extend(p for p in found.missing if p not in known)
            restarted.update(found.restarted)
            return found.value

        attempts = {
            lane: (
                grew(ATTEMPTS, lane, f"retry_amplification.{lane}"),
                grew(ORDERS, lane, f"retry_amplification.{lane}"),
            )
            for lane in LANES
        }
        counts: dict[str, Any] = {"name": broker}
        for key, name in BROKER_COUNTERS.items():
            counts[key] = round(grew(name, "async", f"broker.{key}"))
        return cls(
            attempts=attempts,
            broker=counts,
            incomplete=incomplete,
            restarted=sorted(restarted),
            attempt_timeline=attempt_timeline(readings, lanes=lanes, since=since),
        )


class CounterSampler:
    """Reads the counters of the order services and workers from their /metrics, through a run.

    ``read()`` takes a reading now; ``tick()`` takes one if ``interval_s`` has passed since the
    last, so a loop that polls every second reads every few seconds. Readings are kept up to
    ``max_readings``; after that ``tick()`` reads no more (the end reading still counts).
    """

    NAMES = (ATTEMPTS, ORDERS, *BROKER_COUNTERS.values())

    def __init__(
        self,
        topology: Topology,
        *,
        interval_s: float = 2.0,
        timeout_s: float = 2.0,
        max_readings: int = 10_000,
    ) -> None:
        self.processes = [spec for spec in topology.processes if spec.kind in ("order", "worker")]
        self.broker = topology.settings.broker
        self.interval_s, self.timeout_s, self.max_readings = interval_s, timeout_s, max_readings
        self.readings: list[Reading] = []
        self.since = 0.0
        self.last = 0.0

    def read(self, timeout_s: float = 5.0) -> None:
        now = time.time()
        if not self.readings:
            self.since = now
        self.last = now
        # All at once: a process that does not answer costs one timeout, not one each.
        with ThreadPoolExecutor(max_workers=max(1, len(self.processes))) as pool:
            answers = pool.map(lambda spec: self._answer(spec, timeout_s), self.processes)
            self.readings.append(dict(zip((spec.name for spec in self.processes), answers, strict=True)))

    def tick(self) -> None:
        if time.time() - self.last >= self.interval_s and len(self.readings) < self.max_readings:
            self.read(self.timeout_s)

    def counters(self) -> RunCounters:
        lanes: dict[str, list[str]] = {}
        for spec in self.processes:
            lanes.setdefault(spec.lane or "", []).append(spec.name)
        return RunCounters.from_readings(self.readings, lanes=lanes, broker=self.broker, since=self.since)

    @staticmethod
    def _answer(spec: ProcessSpec, timeout_s: float) -> ProcessReading | None:
        """The process's counters now; a series its page lacks counts 0 here, as the sampler
        sums a lane over processes that each count a part of it."""
        try:
            page = scrape(spec, timeout_s=timeout_s, only=(*CounterSampler.NAMES, START_TIME))
        except MetricsUnreadable:
            return None
        started_at: float | None = None
        values: dict[Series, float] = {}
        sent: dict[tuple[str, str], float] = {}
        for sample in page.samples:
            if sample.name == START_TIME:
                started_at = sample.value
            if sample.name not in CounterSampler.NAMES:
                continue
            if sample.name == ATTEMPTS and sample.labels.get("outcome") in SENT_OUTCOMES:
                hop = (sample.labels.get("lane", ""), sample.labels.get("dependency", ""))
                sent[hop] = sent.get(hop, 0.0) + sample.value
            if sample.name == ORDERS and sample.labels.get("method") != "POST":
                continue
            key = (sample.name, sample.labels.get("lane", ""))
            values[key] = values.get(key, 0.0) + sample.value
        return ProcessReading(started_at=started_at, values=values, sent=sent, at=page.read_at)
