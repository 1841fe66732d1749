"""Locust's request statistics, counted in bulk: what Locust's web UI, ``--csv`` and summary
show by request name, without Locust's ``request`` event and ``StatsEntry.log`` per request.

doorbuster keeps its own exact records of every request (``requests.jsonl``, its latency
histogram); Locust's figures are for people watching its UI. So a request only adds to a
tally here (a few additions), and once a second the tally is handed to Locust as a report in
the shapes a Locust worker sends its master (:meth:`StatsTally.drain`), which Locust merges
with its own code. Response times are kept as Locust keeps them: milliseconds, their
distribution rounded by Locust's own rounding function (passed in, so this imports no Locust).

    >>> tally = StatsTally(bucket=round)
    >>> tally.add("sync checkout", 10.0, 10.25, 200, length=12)
    >>> tally.add("sync checkout", 10.0, 10.5, 502, error="HTTP 502")
    >>> report = tally.drain()
    >>> [(e["name"], e["num_requests"], e["num_failures"], e["response_times"]) for e in report.stats]
    [('sync checkout', 2, 1, {250: 1, 500: 1})]
    >>> [(e["error"], e["occurrences"]) for e in report.errors.values()]
    [("Exception('HTTP 502')", 1)]
    >>> tally.drain().empty
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StatsReport", "StatsTally", "method_of"]


def method_of(name: str) -> str:
    """The method a request name is shown with in Locust's stats: a checkout is sent as POST.

    >>> method_of("sync checkout retry"), method_of("async fulfillment")
    ('POST', 'GET')
    """
    return "POST" if "checkout" in name else "GET"


@dataclass
class _Entry:
    """One (name, method)'s requests since the last drain, in the fields of Locust's StatsEntry."""

    name: str
    method: str
    first: float
    last: float = 0.0
    num_requests: int = 0
    num_failures: int = 0
    total_response_time: float = 0.0
    min_response_time: float | None = None
    max_response_time: float = 0.0
    total_content_length: int = 0
    response_times: dict[int, int] = field(default_factory=dict)
    num_reqs_per_sec: dict[int, int] = field(default_factory=dict)
    num_fail_per_sec: dict[int, int] = field(default_factory=dict)

    def as_locust(self) -> dict[str, Any]:
        """As Locust serializes a StatsEntry (``StatsEntryDict``)."""
        return {
            "name": self.name,
            "method": self.method,
            "last_request_timestamp": self.last,
            "start_time": self.first,
            "num_requests": self.num_requests,
            "num_none_requests": 0,
            "num_failures": self.num_failures,
            "total_response_time": self.total_response_time,
            "max_response_time": self.max_response_time,
            "min_response_time": self.min_response_time,
            "total_content_length": self.total_content_length,
            "response_times": self.response_times,
            "num_reqs_per_sec": self.num_reqs_per_sec,
            "num_fail_per_sec": self.num_fail_per_sec,
        }


@dataclass
class _Error:
    method: str
    name: str
    error: str
    occurrences: int
    first_seen: float
    last_seen: float


@dataclass(frozen=True, kw_only=True)
class StatsReport:
    """Requests since the last drain, as a Locust worker reports them to its master: ``stats``
    (StatsEntryDicts), ``stats_total`` (their sum, as Locust's "Aggregated") and ``errors``
    (StatsErrorDicts by Locust's error key)."""

    stats: list[dict[str, Any]]
    stats_total: dict[str, Any]
    errors: dict[str, dict[str, Any]]

    @property
    def empty(self) -> bool:
        """No requests: nothing to merge (its total's start time would be Locust's new start)."""
        return not self.stats

    def as_worker_report(self) -> dict[str, Any]:
        return {"stats": self.stats, "stats_total": self.stats_total, "errors": self.errors}


class StatsTally:
    """Requests by name since the last drain; ``bucket`` rounds a response time in ms as Locust
    does for its distribution (``locust.stats.bucket_response_time``)."""

    def __init__(self, *, bucket: Callable[[float], int]) -> None:
        self._bucket = bucket
        self._entries: dict[str, _Entry] = {}
        self._errors: dict[tuple[str, str], _Error] = {}

    def add(
        self, name: str, started: float, ended: float, code: int, length: int = 0, error: str | None = None
    ) -> None:
        """One request, with the times of its record (epoch seconds); ``error`` if it failed.

        The journeys' :class:`~harness.load.journeys.RequestListener`; ``code`` is not kept
        (Locust's stats count failures by error, not statuses)."""
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = _Entry(name, method_of(name), first=ended)
        ms = (ended - started) * 1000.0
        second = int(ended)
        entry.num_requests += 1
        entry.last = ended
        entry.total_response_time += ms
        entry.total_content_length += length
        if entry.min_response_time is None or ms < entry.min_response_time:
            entry.min_response_time = ms
        if ms > entry.max_response_time:
            entry.max_response_time = ms
        rounded = self._bucket(ms)
        entry.response_times[rounded] = entry.response_times.get(rounded, 0) + 1
        entry.num_reqs_per_sec[second] = entry.num_reqs_per_sec.get(second, 0) + 1
        if error is not None:
            entry.num_failures += 1
            entry.num_fail_per_sec[second] = entry.num_fail_per_sec.get(second, 0) + 1
            seen = self._errors.get((name, error))
            if seen is None:
                # Shown as Locust shows the Exception(error) a request event used to carry.
                text = repr(Exception(error))
                self._errors[(name, error)] = _Error(entry.method, name, text, 1, ended, ended)
            else:
                seen.occurrences += 1
                seen.last_seen = ended

    def drain(self) -> StatsReport:
        """Everything since the last drain, which starts the next one."""
        entries, self._entries = self._entries, {}
        errors, self._errors = self._errors, {}
        total = _Entry("Aggregated", "", first=min((e.first for e in entries.values()), default=0.0))
        for entry in entries.values():
            _add_into(total, entry)
        return StatsReport(
            stats=[entry.as_locust() for entry in entries.values()],
            stats_total=total.as_locust(),
            errors={_error_key(e): vars(e).copy() for e in errors.values()},
        )


def _add_into(total: _Entry, entry: _Entry) -> None:
    total.last = max(total.last, entry.last)
    total.num_requests += entry.num_requests
    total.num_failures += entry.num_failures
    total.total_response_time += entry.total_response_time
    total.total_content_length += entry.total_content_length
    total.max_response_time = max(total.max_response_time, entry.max_response_time)
    if entry.min_response_time is not None:
        low = total.min_response_time
        total.min_response_time = (
            entry.min_response_time if low is None else min(low, entry.min_response_time)
        )
    for into, source in (
        (total.response_times, entry.response_times),
        (total.num_reqs_per_sec, entry.num_reqs_per_sec),
        (total.num_fail_per_sec, entry.num_fail_per_sec),
    ):
        for key, count in source.items():
            into[key] = into.get(key, 0) + count


def _error_key(error: _Error) -> str:
    """Locust's key for an error (``StatsError.create_key``), so repeats add to one row."""
    return hashlib.sha256(f"{error.method}.{error.name}.{error.error!r}".encode()).hexdigest()
