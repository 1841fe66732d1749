"""The generator's request log: every request with its intended start, written where it is
made, and the latency counts taken from the same times.

The single local process writes ``requests.jsonl`` itself. A worker writes its own shard
(``shards/worker-<i>.jsonl`` in the run directory) as it goes, and reports to the master
each second only what the live figures need: its journeys in flight and its latency counts
so far (three significant digits, mergeable; :meth:`RequestLog.worker_report`,
:meth:`RequestLog.take_worker_report`). After the load the master merges the shards into
``requests.jsonl`` (:meth:`RequestLog.take_shards`), so its cost does not grow with the load.

    >>> log = RequestLog(("sync",), Path("unused.jsonl"), is_worker=True)
    >>> end = log.record(10.0, "sync", "checkout", 200, 0, "o1", start=10.001, end=10.2)
    >>> log.observe("sync checkout", 0.2)
    >>> sorted(log.worker_report(generating=False, worker_id="w1"))
    ['generating', 'id', 'in_flight', 'latency']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from harness.load.latency_counts import CountsSnapshot, LatencyCounts
from harness.load.latency_histogram import LatencyHistogram
from harness.records.run_dir import SHARD_WRITING
from harness.records.schema import RequestRecord
from harness.records.shards import merge_shards
from model.buckets import LATENCY_BUCKETS

__all__ = ["MAX_BUFFERED", "WORKER_REPORT", "RequestLog", "lane_and_kind", "wait_for_shards"]

# The message a worker sends its report in.
WORKER_REPORT = "doorbuster_log"
# Records held in memory at most before they are written out (also written once a second):
# a few hundred kilobytes, however fast the load, and a write per batch, not per request.
MAX_BUFFERED = 2000


def wait_for_shards(
    shards: Sequence[Path], *, wait_s: float, sleep: Callable[[float], object], clock: Callable[[], float]
) -> list[Path]:
    """Waits, at most ``wait_s``, until every worker closed its shard (a worker closes it as
    it quits, which may be just after the master); the shards it did not close in time."""
    deadline = clock() + wait_s
    while True:
        open_ = [shard for shard in shards if not shard.exists()]
        if not open_ or clock() >= deadline:
            return open_
        sleep(0.1)


def lane_and_kind(name: str) -> tuple[str, str]:
    """A request name ("sync checkout retry") as the exporter's labels (sync, checkout_retry).

    >>> lane_and_kind("async arrival dropped")
    ('async', 'arrival_dropped')
    """
    lane, _, kind = name.partition(" ")
    return lane, kind.replace(" ", "_")


class RequestLog:
    """Every request, with its intended start, written in batches of whole lines to this
    process's file, and the latency counts taken from the same times."""

    def __init__(
        self,
        lanes: Sequence[str],
        path: Path,
        *,
        is_worker: bool,
        clock: Callable[[], float] = time.time,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be at least 1, got {max_buffered}")
        self.path = path
        self.is_worker = is_worker
        self.max_buffered = max_buffered
        self._clock = clock
        self._lines: list[str] = []
        self._file: IO[str] | None = None
        self._created = False
        self._shard: Path | None = None  # a worker's shard, named so once closed
        self.in_flight: dict[str, int] = dict.fromkeys(lanes, 0)
        self.remote_in_flight: dict[str, dict[str, int]] = {}
        self.latency = LatencyCounts()
        self.remote_latency: dict[str, CountsSnapshot] = {}
        self.remote_generating: dict[str, bool] = {}

    def open(self, shard: Path | None = None) -> None:
        """The log's file: ``requests.jsonl``, or a worker's ``shard`` (written as
        ``<shard>.part``, renamed to ``shard`` by :meth:`close`)."""
        if self._file is not None:
            return
        if shard is not None:
            shard.parent.mkdir(parents=True, exist_ok=True)
            self._shard, self.path = shard, shard.with_name(shard.name + SHARD_WRITING)
        # Created by this process ("x" fails on an existing log); only reopened for append.
        mode = "a" if self._created else "x"
        self._file = open(self.path, mode)  # noqa: SIM115
        self._created = True
        self.flush()

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
        self._lines.append(rec.json_line())
        if len(self._lines) >= self.max_buffered:
            self.flush()
        return end

    def observe(self, name: str, seconds: float) -> None:
        """A request's latency, by its request name, into the latency counts."""
        self.latency.observe(*lane_and_kind(name), seconds)

    def worker_report(self, *, generating: bool, worker_id: str) -> dict[str, Any]:
        """A worker's report to the master: its journeys in flight, its latency counts, and
        whether its arrivals are not all sent yet. No records: they stay in its shard."""
        return {
            "in_flight": self.in_flight,
            "latency": self.latency.snapshot(),  # the whole counts so far: a lost report heals
            "generating": generating,
            "id": worker_id,
        }

    def take_worker_report(self, data: Mapping[str, Any]) -> None:
        """In the master: a worker's report, replacing its last one."""
        self.remote_in_flight[data["id"]] = data["in_flight"]
        self.remote_latency[data["id"]] = [
            (lane, kind, [(int(k), int(n)) for k, n in pairs], float(total))
            for lane, kind, pairs, total in data["latency"]
        ]
        self.remote_generating[data["id"]] = data["generating"]

    def take_shards(self, shards: Sequence[Path]) -> int:
        """In the master, after the load: the workers' shards merged by intended start into
        this log; how many records. ConfigError naming a shard's bad line."""
        self.open()
        self.flush()
        assert self._file is not None
        count = merge_shards(shards, self._file)
        self._file.flush()
        return count

    def latency_counts(self) -> LatencyCounts:
        """This process's latency counts and every worker's, added up."""
        return LatencyCounts.merged([self.latency.snapshot(), *self.remote_latency.values()])

    def latency_histogram(self) -> LatencyHistogram:
        """The added-up counts in the exporter's buckets."""
        return self.latency_counts().histogram(LATENCY_BUCKETS)

    def workers_generating(self) -> int:
        """Workers whose last report said their arrivals were not all sent yet."""
        return sum(self.remote_generating.values())

    def lane_in_flight(self, lane: str) -> int:
        """Journeys of ``lane`` in flight here and in every worker, as last reported."""
        return self.in_flight[lane] + sum(v.get(lane, 0) for v in self.remote_in_flight.values())

    def total_in_flight(self) -> int:
        return sum(self.in_flight.values()) + sum(sum(v.values()) for v in self.remote_in_flight.values())

    def flush(self) -> None:
        """The records so far, out to the file as whole lines (for a reader of the growing log)."""
        if self._file is None:
            return
        if self._lines:
            self._file.write("".join(self._lines))
            self._lines.clear()
        self._file.flush()

    def close(self) -> None:
        """Everything written; a worker's shard renamed to its closed name."""
        if self._file is None:
            return
        self.flush()
        self._file.close()
        self._file = None
        if self._shard is not None:
            self.path = self.path.rename(self._shard)
            self._shard = None
