"""``doorbuster run``: one scenario, both lanes, the same traffic and the same faults.

It brings the stack up (with the scenario's settings) if needed, removes leftover faults,
starts Locust as a subprocess (this is the one harness module that does), shows live
progress, removes every fault at the end even on Ctrl-C, waits (bounded) for the async
backlog to drain, and writes the run directory: Locust's CSV and HTML, ``requests.jsonl``,
``chaos.json``, ``ledger.json`` and ``scenario.json`` (what :mod:`harness.judge` decides the
verdicts from), ``series.json`` (every report panel, from Prometheus), ``summary.json`` and
``report.html``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.analysis import FaultWindow, Row, percentile
from harness.binaries import PROJECT_ROOT
from harness.chaos import Chaos
from harness.counters import CounterSampler, RunCounters
from harness.judge import LEDGER_FILE, recorded_run, summarise, write_run_scenario
from harness.leases import sweep_leftovers
from harness.panels import PANELS
from harness.prometheus import PrometheusClient
from harness.records import IncompleteCounters, RequestRecord, RunLedger
from harness.scenario import Scenario, load_scenario
from harness.stack import Stack
from harness.systems import check_hosts
from harness.timescale import time_scaled
from model.errors import ConfigError, DoorbusterError, EnvironmentProblem
from model.settings import PortSettings
from model.topology import LANES, Topology, is_loopback

__all__ = [
    "RunOptions",
    "RunResult",
    "ensure_stack",
    "machine_scenario",
    "new_run_dir",
    "run_scenario",
    "run_trial",
    "scaled",
]

LOCUSTFILE = PROJECT_ROOT / "locustfiles" / "shoppers.py"


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    scenario: str
    duration_s: float | None = None
    peak_rps: float | None = None
    out: Path | None = None
    workers: int = 0
    # The machine's concern, not the scenario's: by default those of the running stack.
    ports: PortSettings | None = None
    # The whole experiment in this many times its time (harness.timescale), the stack with it.
    time_scale: float | None = None
    # lane -> base URL, instead of the stack's order services; off loopback only if allowed
    targets: dict[str, str] | None = None
    allow_hosts: tuple[str, ...] = ()
    # The system under test (--system), over the scenario's own.
    system: str | None = None


def check_targets(targets: dict[str, str], allow_hosts: tuple[str, ...]) -> None:
    """Load goes to loopback only, unless the user names the host explicitly."""
    for lane, url in targets.items():
        if lane not in LANES:
            raise ConfigError(f"--target {lane}=...: the lanes are {', '.join(LANES)}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--target {lane}={url}: expected an http(s) URL")
        if not is_loopback(parts.hostname) and parts.hostname not in allow_hosts:
            raise ConfigError(
                f"--target {lane}={url}: {parts.hostname} is not a loopback address; load goes only "
                f"to 127.0.0.0/8 and ::1 unless you allow it with --allow-host {parts.hostname}"
            )


@dataclass(frozen=True, kw_only=True)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.summary.get("passed"))


def scaled(scenario: Scenario, *, duration_s: float | None, peak_rps: float | None) -> Scenario:
    """The scenario stretched to ``duration_s`` (chaos times too) and its peak rate set."""
    data = scenario.model_dump(by_alias=True)
    if duration_s is not None:
        if duration_s <= 0:
            raise ConfigError("--duration must be positive")
        factor = duration_s / scenario.duration_s
        for stage in data["load"]["stages"]:
            stage["duration"] *= factor
        for step in data["chaos"]:
            step["at"] *= factor
            step["for"] *= factor
    if peak_rps is not None:
        peak = max(stage.rate for stage in scenario.load.stages)
        if peak_rps <= 0 or peak == 0:
            raise ConfigError("--peak-rps must be positive, and the scenario must have load")
        for stage in data["load"]["stages"]:
            stage["rate"] *= peak_rps / peak
    data["expectations"] = [e.text for e in scenario.expectations]
    return Scenario.model_validate(data)


class _Progress:
    """Reads the request log as it grows and shows the last ten seconds per lane."""

    def __init__(self, scenario: Scenario, run_dir: Path) -> None:
        self.scenario = scenario
        self.log = run_dir / "requests.jsonl"
        self.chaos = run_dir / "chaos.json"
        self.offset = 0
        self.recent: dict[str, deque[tuple[float, float, bool]]] = {lane: deque() for lane in LANES}
        self.started = time.time()

    def read(self) -> None:
        try:
            with self.log.open() as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            with contextlib.suppress(ValueError, TypeError):
                rec = RequestRecord.from_json(json.loads(line))
                if rec.kind == "checkout":
                    self.recent[rec.lane].append((rec.end, rec.end - rec.intended_start, rec.ok))
        horizon = time.time() - 10
        for q in self.recent.values():
            while q and q[0][0] < horizon:
                q.popleft()

    def active_faults(self) -> list[str]:
        try:
            record = json.loads(self.chaos.read_text())
        except (OSError, ValueError):
            return []
        return [f["name"] for f in record["faults"] if f["started_at"] and not f["ended_at"]]

    def table(self) -> Table:
        self.read()
        elapsed = time.time() - self.started
        stage = self.scenario.load.stage_at(elapsed)
        title = (
            f"{self.scenario.name}: {elapsed:5.0f}s / {self.scenario.duration_s:.0f}s, "
            f"stage {stage.name if stage else 'draining'}; faults: "
            f"{', '.join(self.active_faults()) or 'none'}"
        )
        table = Table("lane", "ok/s", "p95 (ok)", "errors/s", title=title, title_justify="left")
        for lane in self.scenario.load.lanes:
            q = self.recent[lane]
            ok = [lat for _, lat, good in q if good]
            p95 = percentile(ok, 0.95)
            table.add_row(
                lane,
                f"{len(ok) / 10:.1f}",
                "-" if math.isnan(p95) else f"{p95:.2f}s",
                f"{sum(1 for *_, good in q if not good) / 10:.1f}",
            )
        return table


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the harness dies, even by kill -9, so
    Locust quits (removing its faults) instead of running on as an orphan."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _locust_commands(topology: Topology, run_dir: Path, workers: int) -> list[list[str]]:
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]
    master = [
        *base, "--headless", "--only-summary",
        "--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust.html"),
    ]  # fmt: skip
    if workers <= 0:
        return [master]
    port = str(topology.ports["locust-master"])
    master += [
        "--master", "--expect-workers", str(workers),
        "--master-bind-host", topology.host, "--master-bind-port", port,
    ]  # fmt: skip
    worker = [*base, "--worker", "--master-host", topology.host, "--master-port", port]
    return [master] + [worker] * workers


def ensure_stack(stack: Stack, scenario: Scenario, console: Console) -> Topology:
    """The running stack if its settings are the scenario's; else (re)start it with them."""
    if stack.supervisor_pid() is not None:
        try:
            running = stack.topology()
        except DoorbusterError:
            running = None
        if running is not None and running.settings == scenario.stack:
            stack.wait_healthy(running, timeout_s=60)
            return running
        console.print("restarting the stack with this scenario's settings")
        stack.down()
    with console.status("starting the stack..."):
        return stack.up(scenario.stack, timeout_s=120)


def _with_machine_settings(scenario: Scenario, options: RunOptions, stack: Stack) -> Scenario:
    ports = options.ports
    if ports is None and stack.supervisor_pid() is not None:
        with contextlib.suppress(DoorbusterError):
            ports = stack.topology().settings.ports
    update: dict[str, Any] = {}
    if ports is not None:
        update["ports"] = ports
    if not update:
        return scenario
    return scenario.model_copy(update={"stack": scenario.stack.model_copy(update=update)})


def new_run_dir(out: Path | None, scenario_name: str) -> Path:
    """``out``, or ``runs/<time>-<scenario>``; ConfigError if it already holds files, since a
    run's files (its request log above all) must be that run's alone."""
    run_dir = out or PROJECT_ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario_name}"
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir}: is a file, not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise ConfigError(
            f"run directory {run_dir}: not empty (another run's files?); give a new or empty directory, "
            "or remove this one first"
        )
    return run_dir


def run_scenario(options: RunOptions, stack: Stack, console: Console) -> RunResult:
    if options.targets:
        check_targets(options.targets, options.allow_hosts)
    base, _ = load_scenario(options.scenario, system=options.system)
    if base.stack.system is not None:
        check_hosts(base.stack.system, options.allow_hosts)
    scenario = scaled(base, duration_s=options.duration_s, peak_rps=options.peak_rps)
    if options.time_scale is not None:
        scenario = time_scaled(scenario, options.time_scale)
    if options.workers < 0 or options.workers > 64:
        raise ConfigError("--workers must be from 0 to 64")
    run_dir = new_run_dir(options.out, scenario.name)
    scenario = _with_machine_settings(scenario, options, stack)
    if scenario.brokers:
        if options.targets:
            raise ConfigError("a broker shootout runs the harness' own stacks; --target can not go with it")
        return _shootout(options, stack, console, scenario, run_dir)
    return _run_one(options, stack, console, scenario, run_dir)


def machine_scenario(scenario: Scenario, stack: Stack) -> Scenario:
    """``scenario`` with this machine's settings (the running stack's ports), as a run has it."""
    return _with_machine_settings(scenario, RunOptions(scenario=scenario.name), stack)


def run_trial(scenario: Scenario, run_dir: Path, stack: Stack, console: Console) -> RunResult:
    """One run of a scenario built by the caller (``doorbuster sweep``'s trials) into
    ``run_dir``, which must be new or empty: the same pipeline as ``doorbuster run``."""
    options = RunOptions(scenario=scenario.name, out=run_dir)
    scenario = machine_scenario(scenario, stack)
    return _run_one(options, stack, console, scenario, new_run_dir(run_dir, scenario.name))


def _shootout(
    options: RunOptions, stack: Stack, console: Console, scenario: Scenario, run_dir: Path
) -> RunResult:
    """The same load and faults on each broker in turn; one row per broker, one table."""
    from harness.shootout import shootout_summary, write_shootout

    summaries = []
    for i, broker in enumerate(scenario.brokers, 1):
        console.rule(f"broker {i} of {len(scenario.brokers)}: {broker}")
        one = scenario.model_copy(
            update={"brokers": (), "stack": scenario.stack.model_copy(update={"broker": broker})}
        )
        result = _run_one(options, stack, console, one, run_dir / broker)
        summaries.append(result.summary)
        if result.summary.get("interrupted"):
            break
    summary = shootout_summary(scenario, summaries)
    write_shootout(run_dir, summary)
    return RunResult(run_dir=run_dir, summary=summary)


def _run_one(
    options: RunOptions, stack: Stack, console: Console, scenario: Scenario, run_dir: Path
) -> RunResult:
    topology = ensure_stack(stack, scenario, console)
    chaos = Chaos(topology)
    for leftover in sweep_leftovers(stack.state.root, chaos):
        console.print(f"removed a leftover fault: {leftover.describe()}")
    leftovers = chaos.active()
    if leftovers:
        console.print(f"removing {len(leftovers)} leftover fault(s): " + ", ".join(
            f"{f.lane}-{f.dependency} {f.type}" for f in leftovers
        ))  # fmt: skip
        chaos.reset()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_scenario(run_dir, scenario)  # Locust reads it; rewritten from what is judged
    env = {
        **os.environ,
        "DOORBUSTER_SCENARIO": str(run_dir / "scenario.json"),
        "DOORBUSTER_RUN_DIR": str(run_dir),
        "DOORBUSTER_STATE_DIR": str(stack.state.root),
        "DOORBUSTER_WORKERS": str(max(1, options.workers)),
        "PYTHONUNBUFFERED": "1",
    }
    if options.targets:
        env["DOORBUSTER_TARGETS"] = json.dumps(options.targets)
        env["DOORBUSTER_ALLOW_HOSTS"] = ",".join(options.allow_hosts)
    counters = CounterSampler(topology)
    counters.read()
    started = time.time()
    procs: list[subprocess.Popen[bytes]] = []
    interrupted = False
    limit = scenario.duration_s + scenario.drain_timeout + scenario.load.poll.give_up + 120
    with open(run_dir / "locust.log", "ab") as log:
        try:
            for cmd in _locust_commands(topology, run_dir, options.workers):
                procs.append(
                    subprocess.Popen(
                        cmd,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                    )
                )
            stack.state.write_load_pids([p.pid for p in procs])
            progress = _Progress(scenario, run_dir)
            with Live(progress.table(), console=console, refresh_per_second=1, transient=False) as live:
                while procs[0].poll() is None:
                    if time.time() - started > limit:
                        raise EnvironmentProblem(
                            f"Locust did not finish within {limit:.0f}s; see {run_dir}/locust.log"
                        )
                    time.sleep(1)
                    counters.tick()
                    live.update(progress.table())
        except KeyboardInterrupt:
            interrupted = True
            console.print("interrupted: stopping the load and removing every fault")
        finally:
            _stop(procs)
            stack.state.write_load_pids([])
            chaos.reset()
    load_end = time.time()
    if procs and procs[0].returncode not in (0, 1, -2, -15) and not interrupted:
        tail = (run_dir / "locust.log").read_text(errors="replace")[-2000:]
        raise EnvironmentProblem(f"Locust failed (exit {procs[0].returncode}):\n{tail}")
    drain_cut_short = False
    try:
        with console.status("waiting for the async backlog to drain (Ctrl-C to stop waiting)..."):
            drained_at = (
                _wait_drained(topology, scenario.drain_timeout, since=started, tick=counters.tick)
                if scenario.stack.keeps_ledger
                else None
            )
    except KeyboardInterrupt:
        drained_at, drain_cut_short, interrupted = None, True, True
        console.print("stopped waiting for the drain: orders not finished yet are reported in flight")
    counters.read()
    figures = counters.counters()
    result = collect(
        run_dir, scenario, topology,
        started=started, load_end=load_end, drained_at=drained_at,
        attempts=figures.attempts, interrupted=interrupted,
        broker=figures.broker, drain_cut_short=drain_cut_short, counters=figures,
    )  # fmt: skip
    return result


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + 20
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_drained(
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


def _chunks(ids: list[str], size: int = 1000) -> list[list[str]]:
    # Bodies stay under the services' 64 KiB limit.
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def save_series(topology: Topology, start: float, end: float) -> dict[str, Any]:
    """Every report panel's series over the run, from Prometheus, as plain data."""
    client = PrometheusClient(topology.prometheus.url)
    step = max(1.0, (end - start) / 1000)
    series: dict[str, Any] = {"start": start, "end": end, "step": step, "panels": {}}
    for panel in PANELS:
        if not panel.in_report:
            continue
        lines = []
        for query in panel.queries:
            try:
                result = client.query_range(query.expr, start, end, step)
            except EnvironmentProblem as exc:
                series.setdefault("errors", []).append(str(exc))
                continue
            for item in result:
                legend = query.legend
                for key, value in item["metric"].items():
                    legend = legend.replace("{{" + key + "}}", value)
                lines.append({"legend": legend, "points": [[float(t), float(v)] for t, v in item["values"]]})
        series["panels"][panel.key] = lines
    return series


def collect(
    run_dir: Path,
    scenario: Scenario,
    topology: Topology,
    *,
    started: float,
    load_end: float,
    drained_at: float | None,
    attempts: dict[str, tuple[float, float]],
    interrupted: bool,
    broker: dict[str, Any] | None = None,
    drain_cut_short: bool = False,
    counters: RunCounters | None = None,
) -> RunResult:
    from harness.report import write_report

    run = recorded_run(run_dir, scenario)
    statuses, side_effects, drains = (
        _ledgers(topology, scenario, list(run.rows), run.faults, run.t0, since=started)
        if scenario.stack.keeps_ledger
        else ({}, {}, {})
    )
    gaps = None
    if counters is not None:
        gaps = IncompleteCounters(incomplete=counters.incomplete, restarted=counters.restarted)
    ledger = RunLedger(
        t0=run.t0, started=started, load_end=load_end, drained_at=drained_at,
        interrupted=interrupted, drain_cut_short=drain_cut_short,
        async_statuses=statuses, side_effects=side_effects, drains=drains, attempts=attempts,
        broker=broker, counters=gaps,
        attempt_timeline=counters.attempt_timeline if counters is not None else None,
    )  # fmt: skip
    # What judging needs beside the request log, and the very scenario judged (scaled, with
    # its settings), so that ``doorbuster judge`` decides exactly what this run decided.
    (run_dir / LEDGER_FILE).write_text(ledger.to_json())
    write_run_scenario(run_dir, scenario)
    summary = summarise(scenario, run, ledger)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    t0 = run.t0
    try:
        series = save_series(topology, t0 - 5, (drained_at or time.time()) + 5)
    except EnvironmentProblem as exc:
        series = {"panels": {}, "errors": [str(exc)]}
    (run_dir / "series.json").write_text(json.dumps(series))
    write_report(run_dir)
    return RunResult(run_dir=run_dir, summary=summary)
