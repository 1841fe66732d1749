"""``doorbuster sweep``: the vulnerable-region map, one short trial per cell and repeat.

The grid comes from the scenario's ``sweep:`` section (model.scenario.SweepSection; cells
and trial scenarios in harness.sweep.grid, what to run next in harness.sweep.plan).  Each
trial is a ``doorbuster run`` of the cell's trial scenario (harness.run.runner.run_trial) into
``trials/<cell-id>/<repeat>/``.  Before each, the stack is brought to a clean state
(harness.sweep.clean): faults removed, then a bounded wait (``settle``) for every pool,
downstream, worker and breaker to go idle; if it does not, the stack is restarted; a trial
whose stack is still not clean is recorded as dirty, not counted, and tried once more.

The sweep stops starting trials once ``max_time`` has passed (the outputs then mark the cells
not run), on Ctrl-C (faults removed, finished trials kept), or when the plan is done.  Run it
again with ``--out`` on the same directory to resume: finished trials (``trial.json``) are
kept, a partial one is removed and run again.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pydantic

from harness.binaries import PROJECT_ROOT
from harness.config.files import read_json
from harness.config.timescale import time_scaled
from harness.faults.chaos import Chaos
from harness.records.run_dir import LEDGER_FILE, SUMMARY_FILE
from harness.records.summary import read_summary
from harness.run.collect import RunResult
from harness.run.judge import judge_run
from harness.run.plan import machine_scenario
from harness.run.progress import RunProgress
from harness.run.runner import clear_faults, ensure_stack, refuse_foreign_faults, run_trial
from harness.stack.control import Stack
from harness.sweep.clean import first_reasons, stack_dirt
from harness.sweep.directory import GRID_FILE, SweepDir, TrialRecord
from harness.sweep.grid import Cell, grid_cells, grid_record, sweep_of, trial_scenario
from harness.sweep.outcomes import CellSummary
from harness.sweep.plan import next_trials
from harness.sweep.report import SweepTrial, cell_summaries, sweep_data, write_sweep
from model.errors import ConfigError, DoorbusterError, ForeignFaults
from model.scenario import Scenario, SweepSection
from model.topology import Topology

__all__ = [
    "SweepEvents",
    "SweepOptions",
    "SweepResult",
    "TrialRunner",
    "judge_sweep",
    "new_sweep_dir",
    "resume_command",
    "run_sweep",
]


class SweepEvents(RunProgress, Protocol):
    """Progress, for the CLI to show (rich stays at the edge): each trial's run's, and when
    a trial starts."""

    def trial_starting(
        self, cell: Cell, repeat: int, done: int, planned: int, left_s: float | None
    ) -> None: ...


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    out: Path | None = None
    time_scale: float | None = None  # over the section's own
    max_time_s: float | None = None  # over the section's own
    max_trials: int | None = None  # a bound on this invocation's trials (tests, a first look)
    reset_faults: bool = False  # remove faults applied outside doorbuster instead of refusing


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    sweep_dir: Path
    data: dict[str, Any]
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        return bool(self.data["complete"])

    @property
    def open_cells(self) -> int:
        """Cells (per lane) the map leaves open: undetermined or not run."""
        return sum(
            1
            for entries in self.data["lanes"].values()
            for e in entries
            if e["outcome"] in ("undetermined", "not run")
        )


def new_sweep_dir(out: Path | None, name: str) -> Path:
    return out or PROJECT_ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-sweep-{name}"


def resume_command(
    sweep_dir: Path,
    scenario: str | None = None,
    *,
    time_scale: float | None = None,
    max_time: str | None = None,
    config: Path | None = None,
) -> str:
    """The command line that resumes the sweep in ``sweep_dir`` with the options it was
    started with, quoted for a shell."""
    args = ["doorbuster", "sweep", *([scenario] if scenario is not None else [])]
    for flag, value in (("--time-scale", time_scale), ("--max-time", max_time), ("--config", config)):
        if value is not None:
            args += [flag, str(value)]
    return " ".join(shlex.quote(arg) for arg in [*args, "--out", str(sweep_dir)])


def sweep_scenario(scenario: Scenario, time_scale: float | None) -> Scenario:
    """The scenario the sweep runs: scaled by ``time_scale``, else by the section's default."""
    scale = time_scale if time_scale is not None else sweep_of(scenario).time_scale
    return time_scaled(scenario, scale) if scale is not None and scale != 1 else scenario


def _trials(sweep_dir: SweepDir) -> list[SweepTrial]:
    found = []
    for record, path in sweep_dir.finished():
        summary_path = path / SUMMARY_FILE
        found.append(
            SweepTrial(
                record=record,
                run=str(path.relative_to(sweep_dir.root)),
                summary=read_summary(summary_path) if summary_path.is_file() else None,
            )
        )
    return found


# What is dirty on a stack (harness.sweep.clean), and one run of a trial (harness.run.runner).
Inspect = Callable[[Topology, float], list[str]]
RunTrial = Callable[[Scenario, Path, Stack, RunProgress], RunResult]


def _inspect(topology: Topology, since: float) -> list[str]:
    return stack_dirt(topology, since=since)


class TrialRunner:
    """Runs a sweep's trials one by one, each on a clean stack, into the sweep's directory."""

    def __init__(
        self,
        scenario: Scenario,
        sweep_dir: SweepDir,
        stack: Stack,
        *,
        inspect: Inspect = _inspect,
        reset_faults: Callable[[Topology, RunProgress], None] | None = None,
        run: RunTrial = run_trial,
        reset_foreign: bool = False,
    ) -> None:
        self.inspect = inspect
        self.reset_faults = reset_faults or self._reset_faults
        self.reset_foreign = reset_foreign
        self.run = run
        self.scenario = scenario
        self.section = sweep_of(scenario)
        self.dir = sweep_dir
        self.stack = stack
        self.lanes = scenario.load.lanes
        self.last_trial_start = time.time()

    def _reset_faults(self, topology: Topology, progress: RunProgress) -> None:
        """Every fault removed, as before a run: those applied outside doorbuster only if told."""
        try:
            clear_faults(self.stack.state.root, Chaos(topology), progress, reset_faults=self.reset_foreign)
        except ForeignFaults:
            raise
        except DoorbusterError:  # what is left is named by the inspection
            pass

    def outcomes(self, trials: list[SweepTrial]) -> Callable[[Cell], Mapping[str, CellSummary]]:
        return lambda cell: cell_summaries(cell, trials, self.lanes)

    def plan(self) -> list[tuple[Cell, int]]:
        trials = _trials(self.dir)
        done: dict[Cell, int] = {}
        for t in trials:
            done[t.record.cell] = max(done.get(t.record.cell, 0), t.record.repeat)
        return next_trials(self.section, done, self.outcomes(trials))

    def dirt(self, trial: Scenario, events: SweepEvents) -> tuple[list[str], int]:
        """Bring the stack to a clean state for ``trial``: what is still dirty, and restarts."""
        topology = ensure_stack(self.stack, machine_scenario(trial, self.stack), events)
        self.reset_faults(topology, events)
        restarts = 0
        deadline = time.monotonic() + self.section.settle
        while True:
            reasons = self.inspect(topology, self.last_trial_start)
            if not reasons:
                return [], restarts
            if time.monotonic() < deadline:
                time.sleep(1)
                continue
            if restarts:
                return reasons, restarts
            events.note(
                f"the stack is not clean after {self.section.settle:g}s "
                f"({first_reasons(reasons)}): restarting it"
            )
            self.stack.down()
            topology = ensure_stack(self.stack, machine_scenario(trial, self.stack), events)
            self.reset_faults(topology, events)
            self.last_trial_start = time.time()  # what the old stack held is gone with it
            restarts += 1
            deadline = time.monotonic() + self.section.settle

    def run_one(self, cell: Cell, repeat: int, events: SweepEvents) -> bool:
        """One trial; False if it was interrupted (its partial directory removed)."""
        trial = trial_scenario(self.scenario, self.section.attribute, cell)
        run_dir = self.dir.trial_dir(cell, repeat)
        started = time.time()
        restarts = 0
        reasons: list[str] = []
        for _ in range(2):  # a stack that is not clean: recorded, and tried once more
            reasons, n = self.dirt(trial, events)
            restarts += n
            if not reasons:
                break
            events.note(f"trial {cell.id}/{repeat}: the stack is not clean ({first_reasons(reasons)})")
        if reasons:
            self.dir.write_trial(
                TrialRecord(
                    cell=cell, repeat=repeat, status="dirty", started_at=started,
                    duration_s=time.time() - started, dirt=tuple(reasons), restarts=restarts,
                )
            )  # fmt: skip
            return True
        self.last_trial_start = time.time()
        result = self.run(trial, run_dir, self.stack, events)
        if result.summary.interrupted:
            shutil.rmtree(run_dir, ignore_errors=True)
            return False
        self.dir.write_trial(
            TrialRecord(
                cell=cell, repeat=repeat, status="counted", started_at=started,
                duration_s=time.time() - started, restarts=restarts,
            )
        )  # fmt: skip
        return True


def _write_outputs(sweep_dir: SweepDir, *, complete: bool, stopped: str | None) -> dict[str, Any]:
    grid = read_json(sweep_dir.root / GRID_FILE)
    try:
        section = SweepSection.model_validate(_section(grid))
    except (pydantic.ValidationError, KeyError, TypeError) as exc:
        raise ConfigError(f"{sweep_dir.root / GRID_FILE}: not a sweep's grid ({exc})") from None
    data = sweep_data(grid, grid_cells(section), _trials(sweep_dir), complete=complete, stopped=stopped)
    write_sweep(sweep_dir.root, data)
    return data


def run_sweep(scenario: Scenario, options: SweepOptions, stack: Stack, events: SweepEvents) -> SweepResult:
    """Run (or resume) the sweep of ``scenario`` (already loaded; scaled here)."""
    scenario = sweep_scenario(scenario, options.time_scale)
    section = sweep_of(scenario)
    max_time = options.max_time_s if options.max_time_s is not None else section.max_time
    if max_time <= 0:
        raise ConfigError("--max-time must be positive")
    if options.max_trials is not None and options.max_trials < 1:
        raise ConfigError("--max-trials must be at least 1")
    for cell in grid_cells(section):  # every cell's scenario is valid before anything starts
        trial_scenario(scenario, section.attribute, cell)
    refuse_foreign_faults(stack, reset_faults=options.reset_faults)
    root = SweepDir(new_sweep_dir(options.out, scenario.name))
    for partial in root.open(grid_record(scenario)):
        events.note(f"removed a partial trial: {partial}")
    sweeper = TrialRunner(scenario, root, stack, reset_foreign=options.reset_faults)
    started = time.monotonic()
    durations: list[float] = []
    stopped: str | None = None
    interrupted = False
    try:
        while True:
            plan = sweeper.plan()
            if not plan:
                break
            if durations and time.monotonic() - started >= max_time:
                stopped = f"the time bound ({max_time:g}s) was reached"
                break
            if options.max_trials is not None and len(durations) >= options.max_trials:
                stopped = f"the trial bound ({options.max_trials}) was reached"
                break
            cell, repeat = plan[0]
            left = sum(durations) / len(durations) * len(plan) if durations else None
            events.trial_starting(cell, repeat, len(durations), len(durations) + len(plan), left)
            t = time.monotonic()
            if not sweeper.run_one(cell, repeat, events):
                interrupted, stopped = True, "interrupted"
                break
            durations.append(time.monotonic() - t)
    except KeyboardInterrupt:
        interrupted, stopped = True, "interrupted"
        with contextlib.suppress(DoorbusterError):
            Chaos(stack.running_topology()).reset()
        root.remove_partial()
    data = _write_outputs(root, complete=stopped is None, stopped=stopped)
    return SweepResult(sweep_dir=root.root, data=data, interrupted=interrupted)


def judge_sweep(sweep_dir: Path) -> SweepResult:
    """Every counted trial judged again from its files; sweep.json, map.png and sweep.html
    rewritten."""
    root = SweepDir(sweep_dir)
    if not root.is_sweep():
        raise ConfigError(f"{sweep_dir}: not a sweep's directory (no {GRID_FILE})")
    trials = _trials(root)
    for trial in trials:
        if trial.record.status == "counted" and (sweep_dir / trial.run / LEDGER_FILE).is_file():
            judge_run(sweep_dir / trial.run)
    previous = read_json(sweep_dir / "sweep.json") if (sweep_dir / "sweep.json").is_file() else {}
    data = _write_outputs(
        root, complete=bool(previous.get("complete", False)), stopped=previous.get("stopped")
    )
    return SweepResult(sweep_dir=sweep_dir, data=data)


def _section(grid: Mapping[str, Any]) -> dict[str, Any]:
    """The (scaled) sweep section back from grid.json."""
    return {
        "step": grid["step"], "attribute": grid["attribute"], "loads": grid["loads"],
        "values": grid["values"], "durations": grid["durations"], "trials": grid["trials"],
        "boundary_trials": grid["boundary_trials"], "observe": grid["observe_s"],
        "refine": grid["refine"], "policies": grid["policies"],
    }  # fmt: skip
