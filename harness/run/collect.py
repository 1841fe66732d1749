"""Collection after the load: the wait for the async backlog to drain, the services' ledgers,
Prometheus' series for every report panel, and the run's records, summary and report.

What judging needs beside the request log goes to ``ledger.json``, and the very scenario
judged to ``scenario.json``, so that ``doorbuster judge`` decides exactly what the run decided.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from harness.analysis.inputs import FaultWindow, Row
from harness.analysis.recorded import recorded_run, summarise, write_run_scenario
from harness.metrics.counters import RunCounters
from harness.metrics.panels import panels_for
from harness.metrics.prometheus import PrometheusClient
from harness.records.run_dir import PanelLine, RunDir, RunSeries
from harness.records.schema import IncompleteCounters, RunLedger
from harness.records.summary import Summary
from harness.report.shootout import ShootoutSummary
from model.errors import EnvironmentProblem
from model.scenario import Scenario
from model.topology import LANES, Topology

__all__ = ["LoadTimes", "RunResult", "collect_run", "panel_series", "wait_drained"]

# Bodies stay under the services' 64 KiB limit.
_IDS_PER_REQUEST = 1000
# The series reach a little beyond the run on both sides.
_SERIES_MARGIN_S = 5
_MAX_POINTS = 1000


@dataclass(frozen=True, kw_only=True)
class RunResult:
    run_dir: Path
    summary: Summary | ShootoutSummary

    @property
    def passed(self) -> bool:
        return self.summary.passed


@dataclass(frozen=True, kw_only=True)
class LoadTimes:
    """When the load started and ended, and when the backlog drained (None: not in time)."""

    started: float
    load_end: float
    drained_at: float | None


def wait_drained(
    topology: Topology, timeout_s: float, since: float, tick: Callable[[], None] | None = None
) -> float | None:
    """When every order of this run (accepted from ``since``) has finished and the outbox is
    empty; None if that did not happen within ``timeout_s``. ``tick`` is called at each poll."""
    url = f"{topology.order_service('async').url}/ledger"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            ledger: dict[str, Any] = requests.get(url, params={"since": since}, timeout=5).json()
            if ledger["orders"]["accepted"] == 0 and ledger["outbox_backlog"] == 0:
                return time.time()
        time.sleep(1)
        if tick is not None:
            tick()
    return None


Ledgers = tuple[dict[str, str], dict[str, dict[str, dict[str, int]]], dict[str, float | None]]


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + _IDS_PER_REQUEST] for i in range(0, len(ids), _IDS_PER_REQUEST)]


def _ledgers(
    topology: Topology,
    scenario: Scenario,
    rows: list[Row],
    faults: tuple[FaultWindow, ...],
    t0: float,
    since: float,
) -> Ledgers:
    """After the drain: each async order's status, every order's side effects, drain times."""
    statuses: dict[str, str] = {}
    effects: dict[str, dict[str, dict[str, int]]] = {lane: {} for lane in LANES}
    drains: dict[str, float | None] = {}
    base = topology.order_service("async").url
    ids = {
        lane: sorted({r.order_id for r in rows if r.lane == lane and r.kind == "checkout" and r.order_id})
        for lane in LANES
    }
    try:
        accepted = sorted({r.order_id for r in rows if r.lane == "async" and r.kind == "checkout" and r.ok})
        for chunk in _chunks(accepted):
            answer = requests.post(f"{base}/ledger/check", json={"order_ids": chunk}, timeout=30)
            statuses.update(answer.json()["statuses"])
        for lane in LANES:
            for dep in scenario.stack.chain:
                url = f"{topology.endpoint(f'downstream-{lane}-{dep}').url}/ledger/check"
                applied: dict[str, int] = {}
                for chunk in _chunks(ids[lane]):
                    applied.update(
                        requests.post(url, json={"order_ids": chunk}, timeout=30).json()["applied"]
                    )
                effects[lane][dep] = applied
        for fault in faults:
            drain = requests.get(
                f"{base}/ledger", params={"since": since, "before": t0 + fault.end}, timeout=10
            ).json()["drain"]
            last = drain["last_finished_at"]
            if drain["unfinished"] == 0:
                drains[fault.name] = max(0.0, last - (t0 + fault.end)) if last else 0.0
            else:
                drains[fault.name] = None
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise EnvironmentProblem(f"could not read the ledgers after the run: {exc}") from exc
    return statuses, effects, drains


def panel_series(topology: Topology, start: float, end: float) -> RunSeries:
    """Every report panel's series over the run, from Prometheus, as plain data."""
    client = PrometheusClient(topology.prometheus.url)
    step = max(1.0, (end - start) / _MAX_POINTS)
    series: RunSeries = {"start": start, "end": end, "step": step, "panels": {}}
    for panel in panels_for(topology.builtin):
        if not panel.in_report:
            continue
        lines: list[PanelLine] = []
        for query in panel.queries:
            try:
                result = client.query_range(query.expr, start, end, step)
            except EnvironmentProblem as exc:
                series.setdefault("errors", []).append(str(exc))
                continue
            for item in result:
                legend = query.legend_for(item["metric"])
                lines.append({"legend": legend, "points": [[float(t), float(v)] for t, v in item["values"]]})
        series["panels"][panel.key] = lines
    return series


def collect_run(
    run_dir: RunDir,
    scenario: Scenario,
    topology: Topology,
    *,
    times: LoadTimes,
    counters: RunCounters,
    interrupted: bool,
    drain_cut_short: bool = False,
) -> RunResult:
    """Read the ledgers and the series, write the run's records, summary and report."""
    from harness.report.run_page import write_report  # matplotlib: only once there is a report to draw

    run = recorded_run(run_dir.root, scenario)
    statuses, side_effects, drains = (
        _ledgers(topology, scenario, list(run.rows), run.faults, run.t0, since=times.started)
        if scenario.stack.keeps_ledger
        else ({}, {}, {})
    )
    ledger = RunLedger(
        t0=run.t0, started=times.started, load_end=times.load_end, drained_at=times.drained_at,
        interrupted=interrupted, drain_cut_short=drain_cut_short,
        async_statuses=statuses, side_effects=side_effects, drains=drains, attempts=counters.attempts,
        broker=counters.broker,
        counters=IncompleteCounters(incomplete=counters.incomplete, restarted=counters.restarted),
        attempt_timeline=counters.attempt_timeline,
    )  # fmt: skip
    run_dir.write_ledger(ledger)
    write_run_scenario(run_dir.root, scenario)
    summary = summarise(scenario, run, ledger)
    run_dir.write_summary(summary)
    try:
        series = panel_series(
            topology, run.t0 - _SERIES_MARGIN_S, (times.drained_at or time.time()) + _SERIES_MARGIN_S
        )
    except EnvironmentProblem as exc:
        series = {"panels": {}, "errors": [str(exc)]}
    run_dir.write_series(series)
    write_report(run_dir.root)
    return RunResult(run_dir=run_dir.root, summary=summary)
