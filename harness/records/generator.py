"""``generator.jsonl``: the load generator's own health, one line per generator process and
window, so that a run can tell the generator falling behind from the system being slow.

Each generator process (each Locust worker, or the single process of ``--workers 0``)
takes a :class:`GeneratorSample` about every second while the test runs, and one more when it
stops; a worker sends its samples to the master, which writes them all.  Read offline with
:func:`read_generator_samples`.

    >>> s = GeneratorSample(worker="0", t=1000.0, window_s=1.0, sends=100, send_lag_p99_s=0.002,
    ...     send_lag_max_s=0.004, loop_lag_max_s=0.001, cpu_share=0.35, due=500, sent=498,
    ...     dropped=0, never_sent=0, stopped=False)
    >>> GeneratorSample.from_json(s.to_json()) == s
    True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.config.files import read_json_lines

__all__ = ["GeneratorSample", "read_generator_samples"]


@dataclass(frozen=True, kw_only=True)
class GeneratorSample:
    """One generator process's health over one window; times are epoch seconds.

    - ``worker``: the generator, by its segment of the arrival schedule ("0" .. "N-1"; "0"
      for a single process), so the label's values are bounded by ``--workers``.
    - ``t``: the window's end; ``window_s``: its length (the window is ``(t - window_s, t]``).
    - ``sends``: arrivals whose first request went out in the window; ``send_lag_p99_s`` and
      ``send_lag_max_s``: the nearest-rank 99th percentile and the largest of their send lag
      (``start - intended_start``, as in ``requests.jsonl``), None when there were none.
    - ``loop_lag_max_s``: how late, at the most, a timer set every 100 ms fired in the window:
      the event loop (gevent's hub) was blocked that long and could send nothing.
    - ``cpu_share``: the process's CPU time over the window's wall time (1.0 = one core busy).
    - ``due``, ``sent``, ``dropped``: cumulative since the schedule's start: arrivals (one per
      lane per arrival time) whose intended start had come, arrivals whose first request went
      out, arrivals not sent because the lane had ``max_in_flight`` journeys (those are in
      ``requests.jsonl`` as ``dropped``).  During the run ``due - sent - dropped`` are late.
    - ``never_sent``: arrivals due but never sent, counted in the process's last sample of
      the test (``stopped`` true: taken when its schedule is through and its journeys done, or
      when the load is stopped before that), 0 before; no request record stands for them, so
      none is counted as the system's latency or error.
    """

    worker: str
    t: float
    window_s: float
    sends: int
    send_lag_p99_s: float | None
    send_lag_max_s: float | None
    loop_lag_max_s: float
    cpu_share: float
    due: int
    sent: int
    dropped: int
    never_sent: int
    stopped: bool

    def __post_init__(self) -> None:
        counts = {"sends": self.sends, "due": self.due, "sent": self.sent, "dropped": self.dropped}
        for name, value in {**counts, "never_sent": self.never_sent}.items():
            if value < 0:
                raise ValueError(f"{name} is {value}; a count is never negative")
        if self.window_s <= 0:
            raise ValueError(f"window_s is {self.window_s}; a window has a length")
        if (self.send_lag_p99_s is None) != (self.sends == 0):
            raise ValueError("send_lag_p99_s is null exactly when no arrival was sent in the window")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Any) -> GeneratorSample:
        """The sample of one parsed JSON line; ValueError saying what is wrong with it."""
        names = [f.name for f in fields(cls)]
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object with fields {', '.join(names)}")
        missing = [n for n in names if n not in obj]
        unknown = sorted(set(obj) - set(names))
        if missing or unknown:
            raise ValueError(f"missing field(s) {missing}, unknown field(s) {unknown}")
        for name in ("sends", "due", "sent", "dropped", "never_sent"):
            if not isinstance(obj[name], int) or isinstance(obj[name], bool):
                raise ValueError(f"{name} must be an integer, got {obj[name]!r}")
        for name in ("t", "window_s", "loop_lag_max_s", "cpu_share", "send_lag_p99_s", "send_lag_max_s"):
            value = obj[name]
            if value is None and name.startswith("send_lag"):
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not isinstance(obj["worker"], str) or not isinstance(obj["stopped"], bool):
            raise ValueError("worker must be a string and stopped true or false")
        return cls(**obj)


def read_generator_samples(path: Path) -> list[GeneratorSample]:
    """Every sample of a ``generator.jsonl``; ConfigError naming the file and line of a bad one."""
    return read_json_lines(path, GeneratorSample.from_json, what="a generator sample")
