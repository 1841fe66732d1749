"""The records a run directory holds that judging reads: one typed definition of each.

- :class:`RequestRecord`: one line of ``requests.jsonl``, written by the locustfile (each
  worker writes the same objects to its shard, merged after the load), read by the run,
  ``judge`` and the report.
- :class:`RunLedger`: ``ledger.json``, what the run read live after the drain and what the
  request log can not tell (order statuses, side effects, drains, counter deltas, load end,
  the :class:`AttemptTimeline` of attempts per dependency through the run).

A reader refuses what a writer would not have written, with the reason; through
:func:`harness.config.files.read_json_lines` that becomes ``requests.jsonl: line 3: not a request
record (...)``, exit 2::

    >>> rec = RequestRecord.made(lane="async", kind="checkout", intended_start=10.0, start=10.01,
    ...                          end=10.2, status=202, order_id="o1")
    >>> rec.ok, RequestRecord.from_json(rec.to_json()) == rec
    (True, True)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from harness.config.files import read_json, read_json_lines
from model.errors import ConfigError
from model.topology import LANES
from model.validation import validation_problems

__all__ = [
    "KINDS",
    "AttemptTimeline",
    "IncompleteCounters",
    "RequestRecord",
    "RunLedger",
    "ok_of",
    "read_ledger",
    "read_requests",
]

# checkout: one attempt's answer; fulfillment: following an accepted order to its end;
# dropped: an arrival not sent because its lane had max_in_flight journeys already.
KINDS = ("checkout", "fulfillment", "dropped")
# A followed order ends fulfilled (200), failed (500) or given up on (0).
_FULFILMENT_STATUSES = (0, 200, 500)
_FIELDS = ("lane", "kind", "intended_start", "start", "end", "status", "ok", "order_id", "attempt")


# A JSON string, as json.dumps writes it (ASCII, escaped): the encoder's own C function.
_quoted: Callable[[str], str] = json.encoder.encode_basestring_ascii


def ok_of(kind: str, status: int) -> bool:
    """Whether a record of this kind with this status is a success."""
    if kind == "checkout":  # any 2xx: 200 (sync), 202 (async), 201 (a system's "created")
        return 200 <= status <= 299
    return kind == "fulfillment" and status == 200


@dataclass(frozen=True, kw_only=True)
class RequestRecord:
    """One request of a run; times are epoch seconds.

    ``intended_start`` is the arrival's scheduled start (every attempt of a journey keeps it),
    ``start`` when this attempt was sent (when following began, for a fulfilment; None for a
    dropped arrival), ``end`` its answer (or giving up). ``status`` is the HTTP status, 0 for
    none; ``ok`` is derived from kind and status (:func:`ok_of`).
    """

    lane: str
    kind: str
    intended_start: float
    start: float | None
    end: float
    status: int
    ok: bool
    order_id: str
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.lane not in LANES:
            raise ValueError(f"lane {self.lane!r} is not one of {', '.join(LANES)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "fulfillment" and self.status not in _FULFILMENT_STATUSES:
            raise ValueError(f"a fulfillment's status is 200, 500 or 0, not {self.status}")
        if self.kind == "dropped" and (self.status, self.start, self.order_id) != (0, None, ""):
            raise ValueError("a dropped arrival has status 0, start null and no order_id")
        if self.kind != "dropped" and self.start is None:
            raise ValueError(f"a {self.kind} record needs its start")
        if not 0 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status (or 0 for none)")
        if self.attempt < 0:
            raise ValueError(f"attempt {self.attempt} is negative")
        if self.ok != ok_of(self.kind, self.status):
            raise ValueError(
                f"ok is {str(self.ok).lower()}, but a {self.kind} with status {self.status} "
                f"is {'' if ok_of(self.kind, self.status) else 'not '}a success"
            )

    @classmethod
    def made(
        cls,
        *,
        lane: str,
        kind: str,
        intended_start: float,
        start: float | None,
        end: float,
        status: int,
        order_id: str,
        attempt: int = 0,
    ) -> RequestRecord:
        """The writer's constructor: ``ok`` derived, times rounded to 0.1 ms."""
        return cls(
            lane=lane,
            kind=kind,
            intended_start=round(intended_start, 4),
            start=None if start is None else round(start, 4),
            end=round(end, 4),
            status=status,
            ok=ok_of(kind, status),
            order_id=order_id,
            attempt=attempt,
        )

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    def json_line(self) -> str:
        """The record as a line of ``requests.jsonl``: ``json.dumps(self.to_json())`` and a
        newline, without the dict and the encoder's walk (the generator writes one per request).

        >>> rec = RequestRecord.made(lane="sync", kind="dropped", intended_start=1.5, start=None,
        ...                          end=1.5, status=0, order_id="")
        >>> rec.json_line() == json.dumps(rec.to_json()) + "\\n"
        True
        """
        start = "null" if self.start is None else repr(self.start)
        return (
            f'{{"lane": {_quoted(self.lane)}, "kind": {_quoted(self.kind)}, '
            f'"intended_start": {self.intended_start!r}, "start": {start}, "end": {self.end!r}, '
            f'"status": {self.status}, "ok": {"true" if self.ok else "false"}, '
            f'"order_id": {_quoted(self.order_id)}, "attempt": {self.attempt}}}\n'
        )

    @classmethod
    def from_json(cls, obj: Any) -> RequestRecord:
        """The record of one parsed JSON line; ValueError saying what is wrong with it."""
        if not isinstance(obj, dict):
            raise ValueError(
                f"expected a JSON object with fields {', '.join(_FIELDS)}, got {type(obj).__name__}"
            )
        missing = [name for name in _FIELDS if name not in obj]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        unknown = sorted(set(obj) - set(_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        for name in ("lane", "kind", "order_id"):
            if not isinstance(obj[name], str):
                raise ValueError(f"{name} must be a string, got {obj[name]!r}")
        for name in ("status", "attempt"):
            if not isinstance(obj[name], int) or isinstance(obj[name], bool):
                raise ValueError(f"{name} must be an integer, got {obj[name]!r}")
        if not isinstance(obj["ok"], bool):
            raise ValueError(f"ok must be true or false, got {obj['ok']!r}")
        times = {name: obj[name] for name in ("intended_start", "end", "start") if obj[name] is not None}
        if obj["intended_start"] is None or obj["end"] is None:
            raise ValueError("intended_start and end must be numbers, not null")
        for name, value in times.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number of epoch seconds, got {value!r}")
        return cls(
            lane=obj["lane"],
            kind=obj["kind"],
            intended_start=float(obj["intended_start"]),
            start=None if obj["start"] is None else float(obj["start"]),
            end=float(obj["end"]),
            status=obj["status"],
            ok=obj["ok"],
            order_id=obj["order_id"],
            attempt=obj["attempt"],
        )


def read_requests(path: Path) -> list[RequestRecord]:
    """Every record of a ``requests.jsonl``; ConfigError naming the file and line of a bad one."""
    return read_json_lines(path, RequestRecord.from_json, what="a request record")


class IncompleteCounters(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    # figure ("retry_amplification.async") -> processes whose part of it is unknown
    incomplete: dict[str, list[str]]
    restarted: list[str]


class AttemptTimeline(pydantic.BaseModel):
    """Downstream attempts that went out, per lane and dependency, through the run.

    ``attempts[lane][dependency][i]`` is how many had gone out from the first counter reading
    to the one taken at ``times[i]`` (epoch seconds), counted reset-aware (harness.metrics.counters);
    None where a process that counts them did not answer.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    times: list[float]
    attempts: dict[str, dict[str, list[float | None]]]

    @pydantic.model_validator(mode="after")
    def _aligned(self) -> AttemptTimeline:
        if any(b < a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ValueError("times must not go backwards")
        for lane, deps in self.attempts.items():
            for dep, counts in deps.items():
                if len(counts) != len(self.times):
                    raise ValueError(
                        f"attempts.{lane}.{dep} has {len(counts)} counts for {len(self.times)} times"
                    )
        return self

    def since(self, t0: float) -> AttemptTimeline:
        """The same timeline with its times in seconds since ``t0`` (the run's)."""
        return self.model_copy(update={"times": [t - t0 for t in self.times]})


class RunLedger(pydantic.BaseModel):
    """``ledger.json``: what the run read after the drain, which judging needs and the request
    log does not hold. Times are epoch seconds."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    t0: float  # the run's time origin: the timeline's start, else the first intended start
    started: float  # Locust started: orders accepted from then on are this run's
    load_end: float  # the load stopped
    drained_at: float | None  # every order finished and the outbox empty; None if not seen
    interrupted: bool
    drain_cut_short: bool  # the user stopped the wait for the drain
    # async order id -> status after the drain ("missing" when the ledger did not know it)
    async_statuses: dict[str, str]
    # lane -> dependency -> order id -> times its side effect was applied
    side_effects: dict[str, dict[str, dict[str, int]]]
    # fault name -> seconds after its removal until every order accepted before it finished
    drains: dict[str, float | None]
    # lane -> (downstream attempts, order requests) counted during the run
    attempts: dict[str, tuple[float, float]]
    broker: dict[str, Any] | None = None  # broker counts (published, redelivered, ...)
    counters: IncompleteCounters | None = None  # which counter figures are incomplete, who restarted
    attempt_timeline: AttemptTimeline | None = None  # attempts per dependency at each counter reading

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def read_ledger(path: Path) -> RunLedger:
    """``ledger.json``, or ConfigError naming the file and what is wrong in it."""
    data = read_json(path)
    try:
        return RunLedger.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{path}: not a run's ledger: {validation_problems(exc)}") from None
