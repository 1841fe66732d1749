"""The generator's request log: every request with its intended start, in ``requests.jsonl``,
and the latency histogram counted from the same times.

The master (or the single local process) writes the log; a worker keeps its records and
sends them, with its journeys in flight and its whole histogram so far, in a report the
master takes (:meth:`RequestLog.worker_report`, :meth:`RequestLog.take_worker_report`).

    >>> log = RequestLog(("sync",), Path("unused.jsonl"), is_worker=True)
    >>> end = log.record(10.0, "sync", "checkout", 200, 0, "o1", start=10.001)
    >>> [row["order_id"] for row in log.worker_report(generating=False, worker_id="w1")["rows"]]
    ['o1']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from harness.load.latency_histogram import LatencyHistogram, Snapshot
from harness.records.schema import RequestRecord
from model.buckets import LATENCY_BUCKETS

__all__ = ["WORKER_REPORT", "RequestLog", "lane_and_kind"]

# The message a worker sends its report in.
WORKER_REPORT = "doorbuster_log"


def lane_and_kind(name: str) -> tuple[str, str]:
    """A request name ("sync checkout retry") as the exporter's labels (sync, checkout_retry).

    >>> lane_and_kind("async arrival dropped")
    ('async', 'arrival_dropped')
    """
    lane, _, kind = name.partition(" ")
    return lane, kind.replace(" ", "_")


class RequestLog:
    """Every request, with its intended start, and the latency histogram counted from the
    same times; workers batch theirs to the master."""

    def __init__(
        self,
        lanes: Sequence[str],
        path: Path,
        *,
        is_worker: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.is_worker = is_worker
        self._clock = clock
        self._buffer: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        self._created = False
        self.in_flight: dict[str, int] = dict.fromkeys(lanes, 0)
        self.remote_in_flight: dict[str, dict[str, int]] = {}
        self.latency = LatencyHistogram(LATENCY_BUCKETS)
        self.remote_latency: dict[str, Snapshot] = {}
        self.remote_generating: dict[str, bool] = {}

    def open(self) -> None:
        if not self.is_worker and self._file is None:
            # Created by this process ("x" fails on an existing log); only reopened for append.
            # Buffered, flushed by :meth:`flush` (once a second): a write per request would be a
            # system call per request. A reader of the growing log reads whole lines only.
            mode = "a" if self._created else "x"
            self._file = open(self.path, mode)  # noqa: SIM115
            self._created = True

    def record(
        self,
        intended: float,
        lane: str,
        kind: str,
        code: int,
        attempt: int,
        order_id: str,
        *,
        start: float | None,
        end: float | None = None,
    ) -> float:
        """Log one request, ended at ``end`` (when its answer arrived) or now; returns its end
        time, for the figures taken from the same record."""
        end = self._clock() if end is None else end
        rec = RequestRecord.made(
            lane=lane, kind=kind, intended_start=intended, start=start, end=end,
            status=code, order_id=order_id, attempt=attempt,
        )  # fmt: skip
        if self._file is not None:
            self._file.write(rec.json_line())
        else:
            self._buffer.append(rec.to_json())
        return end

    def observe(self, name: str, seconds: float) -> None:
        """A request's latency, by its request name, into the exact histogram."""
        self.latency.observe(*lane_and_kind(name), seconds)

    def worker_report(self, *, generating: bool, worker_id: str) -> dict[str, Any]:
        """A worker's report to the master: the records since the last one, its journeys in
        flight, its histogram, and whether its arrivals are not all sent yet."""
        rows, self._buffer = self._buffer, []
        return {
            "rows": rows,
            "in_flight": self.in_flight,
            "latency": self.latency.snapshot(),  # the whole histogram so far: a lost batch heals
            "generating": generating,
            "id": worker_id,
        }

    def take_worker_report(self, data: Mapping[str, Any]) -> None:
        """In the master: a worker's report, its records into the log."""
        self.open()
        assert self._file is not None
        for row in data["rows"]:
            # A worker's records are the same objects, checked as any reader checks them.
            self._file.write(RequestRecord.from_json(row).json_line())
        self._file.flush()
        self.remote_in_flight[data["id"]] = data["in_flight"]
        self.remote_latency[data["id"]] = data["latency"]
        self.remote_generating[data["id"]] = data["generating"]

    def latency_histogram(self) -> LatencyHistogram:
        """This process's latencies and every worker's, added up."""
        return LatencyHistogram.merged(
            LATENCY_BUCKETS, [self.latency.snapshot(), *self.remote_latency.values()]
        )

    def workers_generating(self) -> int:
        """Workers whose last report said their arrivals were not all sent yet."""
        return sum(self.remote_generating.values())

    def lane_in_flight(self, lane: str) -> int:
        """Journeys of ``lane`` in flight here and in every worker, as last reported."""
        return self.in_flight[lane] + sum(v.get(lane, 0) for v in self.remote_in_flight.values())

    def total_in_flight(self) -> int:
        return sum(self.in_flight.values()) + sum(sum(v.values()) for v in self.remote_in_flight.values())

    def flush(self) -> None:
        """The records written so far, out to the file (for a reader of the growing log)."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
