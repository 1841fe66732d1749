"""Expectations: one line of plain text each, parsed into a checkable form.

Grammar (a window is a chaos step's name, a stage's name, or ``baseline``)::

    LANE.METRIC[.STAT] [of successes] OP VALUE [at|during|after WINDOW]
    LANE.METRIC[.STAT] [of successes] within N% of baseline [at|during|after WINDOW]
    LANE.METRIC[.STAT] [of successes] at most N% above baseline [at|during|after WINDOW]
    LANE backlog drains within DURATION after STEP
    LANE recovers within DURATION after STEP
    LANE does not recover within DURATION after STEP
    no lost orders
    no duplicate side effects

LANE is ``sync`` or ``async``; METRIC is ``checkout`` (alias ``ack``: the answer to POST
/orders, for async the 202), ``fulfillment``, ``error_rate``, ``throughput`` or ``goodput``;
STAT is ``p50``, ``p95``, ``p99``, ``max`` or ``mean`` (latency metrics only, default p50);
OP is ``<``, ``<=``, ``>``, ``>=``.  Units are required: a latency or a DURATION in ``ms``,
``s`` (or ``m`` for a DURATION); an error rate in ``%`` or as a ``fraction``
(``sync.error_rate < 0.05 fraction``); a throughput in requests per second, plain or ``/s``,
never ``%``.  A latency counts a failed request as the time the shopper waited until the
failure; ``of successes`` counts successful ones only.  ``within N% of baseline`` holds a
figure to the baseline's both ways; ``at most N% above baseline`` only upwards (a lane that
is no worse than before: being faster does not fail it).  A STEP is a chaos step (the
scenario checks the names).

>>> parse_expectation("async.ack.p99 < 1s").value
1.0
>>> parse_expectation("sync.error_rate > 20% during email-slow").window
'email-slow'
>>> parse_expectation("sync.checkout.p99 of successes < 2s").successes_only
True
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["LATENCY_METRICS", "Expectation", "parse_expectation", "time_scaled_expectation"]

LATENCY_METRICS = ("checkout", "fulfillment")
_RATE_METRICS = ("error_rate", "throughput", "goodput")
_STATS = ("p50", "p95", "p99", "max", "mean")
_WINDOW = r"(?:\s+(?P<mode>at|during|after)\s+(?P<window>[a-z0-9][a-z0-9_-]*))?"
_VALUE = r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%|fraction|/s)?"
_SUBJECT = (
    r"^(?P<lane>sync|async)\.(?P<metric>[a-z_]+)(?:\.(?P<stat>[a-z0-9]+))?(?P<successes>\s+of\s+successes)?"
)

_COMPARE = re.compile(rf"{_SUBJECT}\s*(?P<op><=|>=|<|>)\s*{_VALUE}{_WINDOW}$")
_RELATIVE = re.compile(
    rf"{_SUBJECT}\s+"
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
    successes_only: bool = False  # latency over successful requests only


def _seconds(value: str, unit: str | None, text: str) -> float:
    if unit not in ("ms", "s", "m"):
        raise ValueError(f"{text!r}: a duration needs its unit: ms, s or m (like 30s)")
    return float(value) * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


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


def _successes_only(metric: str, words: str | None, text: str) -> bool:
    if words and metric not in LATENCY_METRICS:
        raise ValueError(f"{text!r}: 'of successes' goes with a latency (checkout, fulfillment) only")
    return bool(words)


def _value(metric: str, value: str, unit: str | None, text: str) -> float:
    """The bound in the metric's own unit: seconds, a fraction, or per second."""
    if metric in LATENCY_METRICS:
        if unit not in ("ms", "s"):
            raise ValueError(
                f"{text!r}: a latency needs its unit, ms or s (like 500ms), not {unit or 'none'}"
            )
        return _seconds(value, unit, text)
    if metric == "error_rate":
        if unit == "%":
            return float(value) / 100.0
        if unit == "fraction":
            return float(value)
        raise ValueError(
            f"{text!r}: an error rate needs % (like 5%) or the word fraction (like 0.05 fraction)"
        )
    if unit in (None, "/s"):
        return float(value)
    raise ValueError(f"{text!r}: {metric} is requests per second, a plain number or /s, not {unit}")


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
        successes = _successes_only(metric, match["successes"], clean)
        value = _value(metric, match["value"], match["unit"], clean)
        return Expectation(
            text=clean, kind="compare", lane=match["lane"], metric=metric, stat=stat,
            op=match["op"], value=value, window=match["window"], mode=match["mode"],  # type: ignore[arg-type]
            successes_only=successes,
        )  # fmt: skip
    if match := _RELATIVE.match(clean):
        metric, stat = _metric(match["metric"], match["stat"], clean)
        successes = _successes_only(metric, match["successes"], clean)
        above = match["above"] is not None
        return Expectation(
            text=clean, kind="relative", lane=match["lane"], metric=metric, stat=stat,
            op="above" if above else None, value=float(match["above" if above else "value"]) / 100.0,
            window=match["window"], mode=match["mode"], successes_only=successes,  # type: ignore[arg-type]
        )  # fmt: skip
    if match := _DRAINS.match(clean):
        return Expectation(
            text=clean, kind="drains", lane=match["lane"],
            value=_seconds(match["value"], match["unit"], clean), window=match["window"], mode="after",
        )  # fmt: skip
    if match := _RECOVERS.match(clean):
        return Expectation(
            text=clean, kind="recovers", lane=match["lane"],
            value=_seconds(match["value"], match["unit"], clean), window=match["window"], mode="after",
            negated=match["negated"].startswith("does"),
        )  # fmt: skip
    raise ValueError(
        f"{clean!r} is not an expectation I understand; for example "
        "'async.ack.p99 < 1s', 'sync.error_rate > 20% during email-slow', "
        "'async backlog drains within 60s after email-slow', 'no lost orders'"
    )


def time_scaled_expectation(expectation: Expectation, scale: float) -> Expectation:
    """The expectation of the same experiment run in ``scale`` times its time: a latency or a
    duration times ``scale``, a throughput divided by it; error rates, percentages and counts
    unchanged.  The text is rewritten with the new number (in the same unit) and parsed
    again, so the text and the value say the same.

    >>> time_scaled_expectation(parse_expectation("async recovers within 60s after x"), 0.25).text
    'async recovers within 15s after x'
    >>> time_scaled_expectation(parse_expectation("sync.throughput >= 4/s"), 0.5).value
    8.0
    """
    e = expectation
    if e.kind == "compare" and e.metric in LATENCY_METRICS:
        factor = scale
    elif e.kind == "compare" and e.metric in ("throughput", "goodput"):
        factor = 1.0 / scale
    elif e.kind in ("drains", "recovers"):
        factor = scale
    else:
        return e
    pattern = {"compare": _COMPARE, "drains": _DRAINS, "recovers": _RECOVERS}[e.kind]
    match = pattern.match(e.text)
    if match is None:  # an Expectation built by hand, not parsed from its text
        raise ValueError(f"{e.text!r} does not read as a {e.kind} expectation")
    number = f"{float(match['value']) * factor:.6g}"
    if "e" in number:  # no exponent: the grammar reads plain decimals
        number = f"{float(match['value']) * factor:.9f}".rstrip("0").rstrip(".")
    start, end = match.span("value")
    return parse_expectation(e.text[:start] + number + e.text[end:])
