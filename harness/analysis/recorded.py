"""Verdicts from a run directory's files alone: what ``doorbuster run`` decides at its end, and
``doorbuster judge RUN_DIR`` decides again later, with no stack.

The run reads the ledgers live, writes them to ``ledger.json`` and the scenario it judged to
``scenario.json``, and then calls :func:`summarise` on what it recorded; ``judge`` reads the
same files and calls the same function, so it reproduces the run's verdicts exactly.

With another scenario file, only its ``expectations`` and ``metastability`` are taken: the
load and the faults are the run's as recorded (the windows an expectation names are the
run's stages and chaos steps, and one it did not have is refused, exit 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pydantic

from harness.analysis.inputs import FaultWindow, Row, RunInputs
from harness.analysis.lost_workers import lost_workers
from harness.analysis.summary import analyse
from harness.config.files import read_json
from harness.config.scenarios import load_scenario
from harness.faults.timeline import ChaosRecord, read_chaos_record
from harness.load.access_log import read_access_log
from harness.load.schedule import planned_arrivals
from harness.metrics.counters import RunCounters
from harness.records.generator import GeneratorSample, read_generator_samples
from harness.records.run_dir import (
    CHAOS_FILE,
    GENERATOR_FILE,
    LEDGER_FILE,
    REQUESTS_FILE,
    SCENARIO_FILE,
    RunDir,
)
from harness.records.schema import RunLedger, read_ledger, read_requests
from harness.records.shards import ShardState, shard_states
from harness.records.summary import RunFacts, Summary
from model.errors import ConfigError
from model.expectations import time_scaled_expectation
from model.scenario import Scenario
from model.validation import validation_problems

__all__ = [
    "RecordedRun",
    "fault_windows",
    "judged_load_end",
    "judged_summary",
    "read_run_scenario",
    "recorded_run",
    "summarise",
    "write_run_scenario",
]


@dataclass(frozen=True, kw_only=True)
class RecordedRun:
    """The request log and the faults as applied, timed from the run's t0."""

    t0: float  # the timeline's start (chaos.json), else the first intended start
    rows: tuple[Row, ...]
    faults: tuple[FaultWindow, ...]
    generator: tuple[GeneratorSample, ...] = ()  # the generator's health, t in run seconds
    shards: tuple[ShardState, ...] = ()  # how each worker left its shard (a distributed run)


def _chaos_record(run_dir: Path) -> ChaosRecord | None:
    """The faults as applied (``chaos.json``), or None when no timeline ran."""
    path = run_dir / CHAOS_FILE
    return read_chaos_record(path) if path.exists() else None


def recorded_run(run_dir: Path, scenario: Scenario, t0: float | None = None) -> RecordedRun:
    """The run's requests and fault windows from ``requests.jsonl`` and ``chaos.json``;
    ``t0`` as recorded in the ledger, or found as the run finds it."""
    log = run_dir / REQUESTS_FILE
    records = read_requests(log) if log.exists() else []
    if t0 is None:
        chaos = _chaos_record(run_dir)
        t0 = chaos.t0 if chaos is not None and chaos.t0 is not None else None
    if t0 is None:
        t0 = min((r.intended_start for r in records), default=time.time())
    rows = tuple(Row.from_record(r, t0) for r in records)
    health = run_dir / GENERATOR_FILE
    samples = read_generator_samples(health) if health.exists() else []
    generator = tuple(replace(s, t=s.t - t0) for s in samples)
    return RecordedRun(
        t0=t0, rows=rows, faults=fault_windows(run_dir, scenario, t0), generator=generator,
        shards=shard_states(RunDir(run_dir)),
    )  # fmt: skip


def fault_windows(run_dir: Path, scenario: Scenario, t0: float) -> tuple[FaultWindow, ...]:
    """Each step's window as applied: from its acknowledged apply to its acknowledged removal.

    A step that never applied keeps its planned window and ``applied=False``; one whose removal
    was not acknowledged ends when the removal was asked for (or as planned), ``removed=False``.
    """
    chaos = _chaos_record(run_dir)
    records = {f.name: f for f in chaos.faults} if chaos is not None else {}
    windows = []
    for step in scenario.chaos:
        rec = records.get(step.name)
        started = rec.started_at if rec is not None else None
        applied = bool(started)
        removed = rec is not None and applied and bool(rec.ended_at)
        start = started - t0 if started else step.at
        ended = rec and (rec.ended_at or rec.removal_requested_at)
        end = ended - t0 if applied and ended else step.end
        windows.append(
            FaultWindow(
                name=step.name,
                dependency=step.dependency,
                lanes=step.lane_tuple,
                type=step.type,
                attributes=dict(step.attributes),
                start=start,
                end=end,
                applied=applied,
                removed=removed,
            )
        )
    return tuple(windows)


def judged_load_end(scenario: Scenario, run: RecordedRun, ledger: RunLedger) -> float:
    """Seconds from t0 to the end of the load the run is judged over: when the load stopped,
    at most a second past the scenario's end (unless interrupted, then when it stopped)."""
    load_end = ledger.load_end - run.t0
    return load_end if ledger.interrupted else min(load_end, scenario.duration_s + 1)


def _schedule(scenario: Scenario) -> Callable[[int, int], Iterator[tuple[float, tuple[str, ...]]]]:
    """The run's arrival schedule, a segment at a time, as its generators had it (none for a
    closed model); a replayed log that can not be read any more gives none."""
    load = scenario.load
    if load.model != "open":
        return lambda segment, segments: iter(())
    try:
        replay = tuple(read_access_log(Path(load.replay.file), load.replay.format)) if load.replay else ()
    except ConfigError:
        return lambda segment, segments: iter(())
    seed = scenario.seed or 0
    return lambda segment, segments: planned_arrivals(
        load, seed=seed, replay=replay, segment=segment, segments=segments
    )


def summarise(scenario: Scenario, run: RecordedRun, ledger: RunLedger) -> Summary:
    """The run's summary: the analysis of what it recorded, with the run's own facts."""
    load_end = judged_load_end(scenario, run, ledger)
    lost = lost_workers(run.generator, run.shards, run.rows, load_end=load_end, arrivals=_schedule(scenario))
    inputs = RunInputs(
        scenario=scenario,
        rows=run.rows,
        faults=run.faults,
        load_end=load_end,
        async_statuses=ledger.async_statuses,
        side_effects=ledger.side_effects,
        attempts=ledger.attempts,
        drains=ledger.drains,
        drain_cut_short=ledger.drain_cut_short,
        attempt_timeline=ledger.attempt_timeline.since(run.t0) if ledger.attempt_timeline else None,
        generator=run.generator,
        lost_workers=lost,
    )
    summary = analyse(inputs)
    lines = summary.reading
    if ledger.counters is not None:
        counters = RunCounters(
            attempts=ledger.attempts,
            broker=ledger.broker or {},
            incomplete=ledger.counters.incomplete,
            restarted=ledger.counters.restarted,
        )
        lines = (*lines, *counters.reading())
    drained = ledger.drained_at
    facts = RunFacts(
        t0=run.t0,
        seed=scenario.seed,
        arrivals=scenario.load.arrivals,
        interrupted=ledger.interrupted,
        drain_cut_short=ledger.drain_cut_short,
        broker=ledger.broker,
        counters=ledger.counters,
        drained_after_load_s=round(drained - ledger.load_end, 1) if drained else None,
    )
    return replace(summary, reading=lines, passed=summary.passed and not ledger.interrupted, run=facts)


def write_run_scenario(run_dir: Path, scenario: Scenario) -> None:
    """``scenario.json``: the scenario exactly as the run judged it (scaled, with its settings)."""
    (run_dir / SCENARIO_FILE).write_text(scenario.model_dump_json(by_alias=True, indent=2))


def read_run_scenario(run_dir: Path) -> Scenario:
    path = run_dir / SCENARIO_FILE
    return _validated(read_json(path), str(path))


def _validated(data: Any, where: str) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{where}: {validation_problems(exc)}") from None


def _with_expectations_of(recorded: Scenario, scenario_file: str, run_dir: Path) -> Scenario:
    """The recorded scenario with another file's expectations and metastability settings."""
    other, path = load_scenario(scenario_file)
    data = recorded.model_dump(by_alias=True)
    # A run made with --time-scale ran the file's experiment in that much of its time: its
    # durations and latencies are judged scaled as the run's own were.
    scale = recorded.time_scale / other.time_scale
    data["expectations"] = [time_scaled_expectation(e, scale).text for e in other.expectations]
    data["metastability"] = other.metastability.model_dump(by_alias=True)
    data["metastability"]["window"] *= scale
    data["metastability"]["smoothing"] *= scale
    return _validated(data, f"{path}: its expectations against the run in {run_dir}")


def judged_summary(run_dir: Path, *, scenario_file: str | None = None) -> Summary:
    """The run's summary decided again from its files (another file's expectations, if given)."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a directory (a run directory of doorbuster run)")
    shootout = any(p.is_dir() and (p / LEDGER_FILE).exists() for p in run_dir.iterdir())
    if shootout and not (run_dir / LEDGER_FILE).exists():
        raise ConfigError(f"{run_dir}: a broker shootout's directory; judge each broker's run in it")
    ledger = read_ledger(run_dir / LEDGER_FILE)
    scenario = read_run_scenario(run_dir)
    if scenario_file is not None:
        scenario = _with_expectations_of(scenario, scenario_file, run_dir)
    try:
        return summarise(scenario, recorded_run(run_dir, scenario, ledger.t0), ledger)
    except ValueError as exc:  # records that passed their own checks but not together
        raise ConfigError(f"{run_dir}: the recorded files do not make one run ({exc})") from exc
