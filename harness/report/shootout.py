"""A broker shootout: one scenario run on each broker in turn, compared in one table.

Each broker's run is a whole run of its own (``<run dir>/<broker>/``, with its summary and
report); the shootout directory adds ``shootout.json``, ``summary.json`` (every broker's
verdicts, prefixed with its name) and ``report.html``, whose table has one row per broker:
the 202's p99, time-to-fulfilment p99, how long the backlog took to drain after the faults,
orders lost (the ledger's count), messages the broker itself reported lost, duplicates the
workers absorbed, redeliveries, and orders handled out of their customer's order.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import pydantic

from harness.config.files import read_json
from harness.records.summary import AsyncOrders, Summary
from harness.records.verdicts import Verdict, verdict_fields
from harness.report.parts import STYLE, run_status, verdict_table
from model.errors import ConfigError
from model.scenario import Scenario
from model.validation import validation_problems

__all__ = ["COLUMNS", "ShootoutSummary", "broker_row", "read_shootout", "shootout_summary", "write_shootout"]

# key -> column heading
COLUMNS = {
    "broker": "broker",
    "accepted_p99_s": "202 p99",
    "fulfilment_p99_s": "fulfilment p99",
    "drain_s": "backlog drain",
    "lost_orders": "lost orders",
    "messages_lost": "lost by broker",
    "duplicates": "duplicates",
    "redelivered": "redelivered",
    "out_of_order": "out of order",
    "verdicts": "verdicts",
}


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


@dataclass(frozen=True, kw_only=True)
class ShootoutSummary:
    """A shootout directory's ``summary.json``: a row per broker, every broker's verdicts
    (prefixed with its name), and whether they all passed."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = pydantic.ConfigDict(extra="forbid")

    scenario: str
    shootout: bool = True
    brokers: tuple[dict[str, Any], ...]  # broker_row's, keys as in COLUMNS
    verdicts: tuple[Verdict, ...]
    passed: bool
    interrupted: bool
    reading: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "shootout": self.shootout,
            "brokers": list(self.brokers),
            "verdicts": [v.as_json() for v in self.verdicts],
            "passed": self.passed,
            "interrupted": self.interrupted,
            "reading": list(self.reading),
        }


def read_shootout(path: Path) -> ShootoutSummary:
    """A shootout's ``summary.json``, or ConfigError naming the file and what is wrong in it."""
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("verdicts"), list):
        data = {**data, "verdicts": [verdict_fields(v) for v in data["verdicts"]]}
    try:
        return pydantic.TypeAdapter(ShootoutSummary).validate_python(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{path}: not a shootout's summary: {validation_problems(exc)}") from None


def broker_row(summary: Summary) -> dict[str, Any]:
    lane = summary.lanes.get("async")
    orders = lane.orders if lane is not None and isinstance(lane.orders, AsyncOrders) else None
    fulfillment = lane.fulfillment_ms if lane is not None else None
    broker = (summary.run.broker if summary.run else None) or {}
    counters = summary.run.counters if summary.run else None
    drains = [d for d in summary.drain_s.values() if d is not None]
    drained = len(drains) == len(summary.drain_s)
    verdicts = summary.verdicts
    return {
        "broker": broker.get("name", "?"),
        "accepted_p99_s": _seconds(lane.latency_ms.p99 if lane is not None else None),
        "fulfilment_p99_s": _seconds(fulfillment.p99 if fulfillment is not None else None),
        # the slowest fault's drain; None when some backlog never drained
        "drain_s": (max(drains) if drains else 0.0) if drained else None,
        "lost_orders": orders.lost if orders else None,
        "messages_lost": broker.get("messages_lost"),
        "duplicates": broker.get("duplicates"),
        "duplicate_side_effects": orders.duplicate_side_effects if orders else None,
        "redelivered": broker.get("redelivered"),
        "out_of_order": broker.get("out_of_order"),
        "verdicts": f"{sum(v.passed for v in verdicts)}/{len(verdicts)}",
        # the broker counts that lack a process's part (see counters.incomplete in summary.json)
        "incomplete": sorted(
            key.removeprefix("broker.")
            for key in (counters.incomplete if counters else {})
            if key.startswith("broker.")
        ),
    }


def _shown(row: dict[str, Any], key: str) -> str:
    return _cell(key, row[key]) + (" (incomplete)" if key in row.get("incomplete", ()) else "")


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "not drained" if key == "drain_s" else "-"
    if key.endswith("_s"):
        return f"{value:.2f} s" if key != "drain_s" else f"{value:.0f} s"
    return str(value)


def shootout_summary(scenario: Scenario, summaries: list[Summary]) -> ShootoutSummary:
    rows = [broker_row(s) for s in summaries]
    verdicts = tuple(
        replace(v, expectation=f"[{row['broker']}] {v.expectation}")
        for row, s in zip(rows, summaries, strict=True)
        for v in s.verdicts
    )
    interrupted = any(s.interrupted for s in summaries) or len(summaries) < len(scenario.brokers)
    reading = tuple(
        f"{row['broker']}: " + ", ".join(f"{COLUMNS[k]} {_shown(row, k)}" for k in list(COLUMNS)[1:])
        for row in rows
    )
    return ShootoutSummary(
        scenario=scenario.name,
        brokers=tuple(rows),
        verdicts=verdicts,
        passed=bool(verdicts) and all(v.passed for v in verdicts) and not interrupted,
        interrupted=interrupted,
        reading=reading,
    )


def write_shootout(run_dir: Path, summary: ShootoutSummary) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "shootout.json").write_text(json.dumps(list(summary.brokers), indent=2))
    (run_dir / "summary.json").write_text(json.dumps(summary.to_json(), indent=2))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in COLUMNS.values())
    body = "".join(
        "<tr>"
        + f'<td><a href="{html.escape(row["broker"])}/report.html">{html.escape(row["broker"])}</a></td>'
        + "".join(f"<td>{html.escape(_shown(row, k))}</td>" for k in list(COLUMNS)[1:])
        + "</tr>"
        for row in summary.brokers
    )
    status, _ = run_status(summary.verdicts, passed=summary.passed)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>doorbuster: {html.escape(summary.scenario)} ({status})</title>
<style>
{STYLE}
</style></head><body>
<h1>{html.escape(summary.scenario)}: one load, one set of faults, every broker</h1>
<p><b>{status}</b>{" (interrupted)" if summary.interrupted else ""}. Each broker's name links to
its own run's report.  <i>lost orders</i>: accepted (202) and never finished, from the ledger;
<i>lost by broker</i>: messages the broker itself said nobody received (Redis Pub/Sub);
<i>duplicates</i>: deliveries of work already done, absorbed by the idempotent workers;
<i>out of order</i>: orders a worker received after a later order of the same customer.</p>
<table><tr>{head}</tr>{body}</table>
<h2>Verdicts</h2>{verdict_table(summary.verdicts)}
</body></html>
"""
    path = run_dir / "report.html"
    path.write_text(page)
    return path
