"""Access logs to replay: each request's time, method and path, read and checked whole before
anything starts, and the arrivals they make.

Three forms are read, one entry a line (blank lines are passed over):

- Common Log Format: ``127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326``
- Combined Log Format: the same, then ``"referer" "user-agent"``
- JSON lines: ``{"timestamp": 1700000000.25, "method": "POST", "path": "/orders"}``, the
  timestamp in epoch seconds or ISO 8601 with its offset.

A line that is none of these is refused with the file, its line number and what was expected.

>>> entries = parse_access_log(
...     '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "POST /orders HTTP/1.1" 201 12\\n'
...     '1.2.3.4 - - [10/Oct/2000:13:55:37 -0700] "GET /health HTTP/1.1" 200 2 "-" "curl/8"\\n',
...     source="access.log",
... )
>>> [(e.line, e.method, e.path) for e in entries]
[(1, 'POST', '/orders'), (2, 'GET', '/health')]
>>> entries[1].timestamp - entries[0].timestamp
1.0
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from harness.config.files import read_text
from model.errors import ConfigError
from model.scenario import LaneRule

__all__ = ["LogEntry", "parse_access_log", "read_access_log", "replay_arrivals"]

_CLF = re.compile(
    r"^(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<path>\S+)(?: [^"]*)?" (?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "[^"]*" "[^"]*")?\s*$'
)
_CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"
_EXPECTED_CLF = (
    "a Common or Combined Log Format line, like 127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "
    '"GET /path HTTP/1.1" 200 512'
)
_EXPECTED_JSON = 'a JSON object like {"timestamp": 1700000000.25, "method": "GET", "path": "/path"}'


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    line: int  # its line number in the file, from 1
    timestamp: float  # epoch seconds
    method: str
    path: str


def _clf_entry(text: str, number: int, source: str) -> LogEntry:
    match = _CLF.match(text)
    if match is None:
        raise ConfigError(f"{source}:{number}: expected {_EXPECTED_CLF}; got {text[:120]!r}")
    try:
        when = datetime.strptime(match["time"], _CLF_TIME)
    except ValueError:
        raise ConfigError(
            f"{source}:{number}: expected a time like [10/Oct/2000:13:55:36 -0700]; got [{match['time']}]"
        ) from None
    return LogEntry(line=number, timestamp=when.timestamp(), method=match["method"], path=match["path"])


def _json_timestamp(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        return when.timestamp() if when.tzinfo is not None else None
    return None


def _json_entry(text: str, number: int, source: str) -> LogEntry:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:{number}: expected {_EXPECTED_JSON}; got {text[:120]!r}")
    timestamp = _json_timestamp(data.get("timestamp"))
    if timestamp is None:
        raise ConfigError(
            f'{source}:{number}: expected "timestamp" in epoch seconds or ISO 8601 with its offset; '
            f"got {data.get('timestamp')!r}"
        )
    method, path = data.get("method"), data.get("path")
    if not isinstance(method, str) or not re.fullmatch(r"[A-Z]+", method):
        raise ConfigError(f'{source}:{number}: expected "method" like GET or POST; got {method!r}')
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f'{source}:{number}: expected "path" starting with /; got {path!r}')
    return LogEntry(line=number, timestamp=timestamp, method=method, path=path)


def parse_access_log(
    text: str, *, source: str, format: Literal["auto", "clf", "jsonl"] = "auto"
) -> list[LogEntry]:
    """Every entry of an access log's text, or ConfigError at its first bad line.  ``auto``
    reads JSON lines when the first entry starts with ``{``, else the Common/Combined form."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ConfigError(f"{source}: no requests in it (an empty access log replays nothing)")
    if format == "auto":
        format = "jsonl" if lines[0][1].startswith("{") else "clf"
    entry = _json_entry if format == "jsonl" else _clf_entry
    return [entry(line, number, source) for number, line in lines]


def read_access_log(path: Path, format: Literal["auto", "clf", "jsonl"] = "auto") -> list[LogEntry]:
    return parse_access_log(read_text(path), source=str(path), format=format)


def replay_arrivals(
    entries: Sequence[LogEntry],
    rules: Sequence[LaneRule],
    *,
    speed: float,
    duration_s: float,
    segment: int = 0,
    segments: int = 1,
) -> Iterator[tuple[float, str]]:
    """``(offset_s, lane)`` for each entry a rule gives a lane, in time order, the log's gaps
    divided by ``speed``; bounded by ``duration_s``.  Segment ``i`` of ``n`` takes the
    replayed arrivals ``i, i + n, ...`` as :func:`~harness.load.arrivals.arrival_times` does.

    >>> rules = [LaneRule(path="^/orders", lane="sync")]
    >>> log = [LogEntry(line=1, timestamp=10.0, method="POST", path="/orders"),
    ...        LogEntry(line=2, timestamp=10.5, method="GET", path="/health"),
    ...        LogEntry(line=3, timestamp=12.0, method="POST", path="/orders/1")]
    >>> list(replay_arrivals(log, rules, speed=2.0, duration_s=60))
    [(0.0, 'sync'), (1.0, 'sync')]
    """
    if segments < 1 or not 0 <= segment < segments:
        raise ValueError(f"segment must be in 0..{segments - 1} of {segments} segments, not {segment}")
    compiled = [(re.compile(rule.path), rule.lane) for rule in rules]
    ordered = sorted(entries, key=lambda e: e.timestamp)  # a log is written as requests end
    if not ordered:
        return
    first = ordered[0].timestamp
    k = 0
    for entry in ordered:
        lane = next((lane for pattern, lane in compiled if pattern.search(entry.path)), None)
        if lane is None:
            continue
        offset = (entry.timestamp - first) / speed
        if offset >= duration_s:
            return
        if k % segments == segment:
            yield offset, lane
        k += 1
