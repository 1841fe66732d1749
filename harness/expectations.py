"""Expectations: one line of plain text each, parsed into a checkable form.

Grammar (a window is a chaos step's name, a stage's name, or ``baseline``)::

    LANE.METRIC[.STAT] OP VALUE [at|during|after WINDOW]
    LANE.METRIC[.STAT] within N% of baseline [at|during|after WINDOW]
    LANE.METRIC[.STAT] at most N% above baseline [at|during|after WINDOW]
    LANE backlog drains within DURATION after WINDOW
    LANE recovers within DURATION after WINDOW
    LANE does not recover within DURATION after WINDOW
    no lost orders
    no duplicate side effects

LANE is ``sync`` or ``async``; METRIC is ``checkout`` (alias ``ack``: the answer to POST
/orders, for async the 202), ``fulfillment``, ``error_rate``, ``throughput`` or ``goodput``;
STAT is ``p50``, ``p95``, ``p99``, ``max`` or ``mean`` (latency metrics only, default p50);
OP is ``<``, ``<=``, ``>``, ``>=``; VALUE takes ``ms``, ``s`` or ``%``.  ``within N% of
baseline`` holds a figure to the baseline's both ways; ``at most N% above baseline`` only
upwards (a lane that is no worse than before: being faster does not fail it).

>>> parse_expectation("async.ack.p99 < 1s").value
1.0
>>> parse_expectation("sync.error_rate > 20% during email-slow").window
'email-slow'
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["LATENCY_METRICS", "Expectation", "parse_expectation"]

LATENCY_METRICS = ("checkout", "fulfillment")
_RATE_METRICS = ("error_rate", "throughput", "goodput")
_STATS = ("p50", "p95", "p99", "max", "mean")
_WINDOW = r"(?:\s+(?P<mode>at|during|after)\s+(?P<window>[a-z0-9][a-z0-9_-]*))?"
_VALUE = r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%)?"

_COMPARE = re.compile(
    rf"^(?P<lane>sync|async)\.(?P<metric>[a-z_]+)(?:\.(?P<stat>[a-z0-9]+))?\s*"
    rf"(?P<op><=|>=|<|>)\s*{_VALUE}{_WINDOW}$"
)
_RELATIVE = re.compile(
    rf"^(?P<lane>sync|async)\.(?P<metric>[a-z_]+)(?:\.(?P<stat>[a-z0-9]+))?\s+"
    rf"(?:within\s+(?P<value>\d+(?:\.\d+)?)\s*%\s+of|at\s+most\s+(?P<above>\d+(?:\.\d+)?)\s*%\s+above)"
    rf"\s+baseline{_WINDOW}$"
)
_DRAINS = re.compile(
    r"^(?P<lane>async)\s+backlog\s+drains\s+within\s+"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m)?\s+after\s+(?P<window>[a-z0-9][a-z0-9_-]*)$"
)
_RECOVERS = re.compile(
    r"^(?P<lane>sync|async)\s+(?P<negated>does\s+not\s+recover|recovers)\s+within\s+"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m)?\s+after\s+(?P<window>[a-z0-9][a-z0-9_-]*)$"
)


class Expectation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    kind: Literal["compare", "relative", "drains", "recovers", "no_loss", "no_duplicates"]
    lane: str | None = None
    metric: str | None = None
    stat: str | None = None
    op: str | None = None
    value: float | None = None
    window: str | None = None
    mode: Literal["at", "during", "after"] | None = None
    negated: bool = False


def _seconds(value: str, unit: str | None) -> float:
    return float(value) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[unit]


def _metric(metric: str, stat: str | None, text: str) -> tuple[str, str | None]:
    metric = "checkout" if metric == "ack" else metric
    if metric in LATENCY_METRICS:
        stat = stat or "p50"
        if stat not in _STATS:
            raise ValueError(f"{text!r}: statistic {stat!r} is not one of {', '.join(_STATS)}")
        return metric, stat
    if metric in _RATE_METRICS:
        if stat is not None:
            raise ValueError(f"{text!r}: {metric} takes no statistic")
        return metric, None
    known = ", ".join(("checkout", "ack", "fulfillment", *_RATE_METRICS))
    raise ValueError(f"{text!r}: unknown metric {metric!r}; known: {known}")


def parse_expectation(text: str) -> Expectation:
    """Parse one expectation; ValueError says what in it is not understood."""
    clean = " ".join(text.strip().split())
    lowered = clean.lower()
    if lowered == "no lost orders":
        return Expectation(text=clean, kind="no_loss")
    if lowered == "no duplicate side effects":
        return Expectation(text=clean, kind="no_duplicates")
    if match := _COMPARE.match(clean):
        metric, stat = _metric(match["metric"], match["stat"], clean)
        value, unit = float(match["value"]), match["unit"]
        if metric in LATENCY_METRICS:
            if unit == "%":
                raise ValueError(f"{clean!r}: a latency is compared with ms or s, not %")
            value = _seconds(match["value"], unit)
        elif unit == "%":
            value /= 100.0
        elif unit is not None:
            raise ValueError(f"{clean!r}: {metric} takes a plain number or %, not {unit}")
        return Expectation(
            text=clean, kind="compare", lane=match["lane"], metric=metric, stat=stat,
            op=match["op"], value=value, window=match["window"], mode=match["mode"],  # type: ignore[arg-type]
        )  # fmt: skip
    if match := _RELATIVE.match(clean):
        metric, stat = _metric(match["metric"], match["stat"], clean)
        above = match["above"] is not None
        return Expectation(
            text=clean, kind="relative", lane=match["lane"], metric=metric, stat=stat,
            op="above" if above else None, value=float(match["above" if above else "value"]) / 100.0,
            window=match["window"], mode=match["mode"],  # type: ignore[arg-type]
        )  # fmt: skip
    if match := _DRAINS.match(clean):
        return Expectation(
            text=clean, kind="drains", lane=match["lane"],
            value=_seconds(match["value"], match["unit"]), window=match["window"], mode="after",
        )  # fmt: skip
    if match := _RECOVERS.match(clean):
        return Expectation(
            text=clean, kind="recovers", lane=match["lane"],
            value=_seconds(match["value"], match["unit"]), window=match["window"], mode="after",
            negated=match["negated"].startswith("does"),
        )  # fmt: skip
    raise ValueError(
        f"{clean!r} is not an expectation I understand; for example "
        "'async.ack.p99 < 1s', 'sync.error_rate > 20% during email-slow', "
        "'async backlog drains within 60s after email-slow', 'no lost orders'"
    )
