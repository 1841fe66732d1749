"""``doorbuster run``: one scenario, both lanes, the same traffic and the same faults.

The run is planned first (:mod:`harness.run.plan`: every option checked before anything
starts); it refuses to start when faults applied outside doorbuster are in force (unless told
to remove them); then it brings the stack up (with the scenario's settings) if needed, removes
leftover faults, sends the run's seed to the targets (:mod:`harness.stack.target_seed`), starts
Locust (:mod:`harness.load.locust_group`), reports its progress (:mod:`harness.run.progress`),
removes every fault at the end even on Ctrl-C, waits (bounded)
for the async backlog to drain, and collects (:mod:`harness.run.collect`) into the run directory
(:mod:`harness.records.run_dir`): Locust's CSV and HTML, ``requests.jsonl``, ``chaos.json``,
``ledger.json`` and ``scenario.json`` (what :mod:`harness.analysis.recorded` decides the verdicts from),
``series.json`` (every report panel, from Prometheus), ``summary.json`` and ``report.html``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from harness.analysis.recorded import write_run_scenario
from harness.faults.chaos import Chaos
from harness.faults.leases import OwnedFault, fault_owners, forget_removed_faults, sweep_leftovers
from harness.load.locust_group import LocustGroup, locust_commands, locust_env
from harness.metrics.counters import CounterSampler
from harness.records.run_dir import RunDir
from harness.records.shards import merge_left_shards
from harness.records.summary import Summary
from harness.run.collect import LoadTimes, RunResult, collect_run, wait_drained
from harness.run.plan import RunOptions, RunPlan, plan_run, plan_trial
from harness.run.progress import LiveTail, RunProgress
from harness.run.status import PublishedProgress
from harness.stack.control import Stack
from harness.stack.target_seed import seed_targets
from model.errors import DoorbusterError, EnvironmentProblem, ForeignFaults
from model.scenario import Scenario
from model.topology import Topology

__all__ = ["clear_faults", "drive_load", "ensure_stack", "refuse_foreign_faults", "run_scenario", "run_trial"]


class LoadProcess(Protocol):
    """What :func:`drive_load` watches: the load runs while this does."""

    def running(self) -> bool: ...


def ensure_stack(stack: Stack, scenario: Scenario, progress: RunProgress) -> Topology:
    """The running stack if its settings are the scenario's; else (re)start it with them."""
    if stack.supervisor_pid() is not None:
        try:
            running = stack.topology()
        except DoorbusterError:
            running = None
        if running is not None and running.settings == scenario.stack:
            stack.wait_healthy(running, timeout_s=60)
            return running
        progress.note("restarting the stack with this scenario's settings")
        stack.down()
    progress.stage("stack", "starting the stack...")
    try:
        return stack.up(scenario.stack, timeout_s=120)
    finally:
        progress.done()


def drive_load(
    load: LoadProcess,
    tail: LiveTail,
    progress: RunProgress,
    *,
    limit_s: float,
    log: Path,
    each_second: Callable[[], None],
    poll_s: float = 1.0,
) -> None:
    """Show the live figures while the load runs; EnvironmentProblem after ``limit_s``."""
    started = time.time()
    progress.stage("load", "load")
    try:
        progress.tick(tail.figures())
        while load.running():
            if time.time() - started > limit_s:
                raise EnvironmentProblem(f"Locust did not finish within {limit_s:.0f}s; see {log}")
            time.sleep(poll_s)
            each_second()
            progress.tick(tail.figures())
    finally:
        progress.done()


def run_scenario(options: RunOptions, stack: Stack, progress: RunProgress) -> RunResult:
    plan = plan_run(options, stack)
    if plan.scenario.brokers:
        return _shootout(plan, stack, progress)
    return _run_one(plan, stack, progress)


def run_trial(
    scenario: Scenario, run_dir: Path, stack: Stack, progress: RunProgress, *, reset_faults: bool = False
) -> RunResult:
    """One run of a scenario built by the caller (``doorbuster sweep``'s trials) into
    ``run_dir``, which must be new or empty: the same pipeline as ``doorbuster run``."""
    return _run_one(plan_trial(scenario, run_dir, stack, reset_faults=reset_faults), stack, progress)


def _shootout(plan: RunPlan, stack: Stack, progress: RunProgress) -> RunResult:
    """The same load and faults on each broker in turn; one row per broker, one table."""
    from harness.report.shootout import shootout_summary, write_shootout

    brokers = plan.scenario.brokers
    summaries = []
    for i, broker in enumerate(brokers, 1):
        progress.heading(f"broker {i} of {len(brokers)}: {broker}")
        result = _run_one(plan.for_broker(broker), stack, progress)
        if isinstance(result.summary, Summary):  # one broker's run is one run, not a shootout
            summaries.append(result.summary)
        if result.summary.interrupted:
            break
    summary = shootout_summary(plan.scenario, summaries)
    write_shootout(plan.run_dir, summary)
    return RunResult(run_dir=plan.run_dir, summary=summary)


def _refusal(foreign: list[OwnedFault]) -> ForeignFaults:
    return ForeignFaults(
        f"{len(foreign)} fault(s) applied outside doorbuster: "
        + "; ".join(owned.fault.describe() for owned in foreign)
        + "; a run's baseline would not be one with them in force: remove them "
        "(doorbuster toxic remove, toxic reset, proxy enable) or run with --reset-faults"
    )


def refuse_foreign_faults(stack: Stack, *, reset_faults: bool) -> None:
    """Before anything starts or is written: :class:`ForeignFaults` (exit 3) when the running
    stack has faults doorbuster did not apply and ``reset_faults`` is not given."""
    if reset_faults or stack.supervisor_pid() is None:
        return
    try:
        owned = fault_owners(stack.state.root, Chaos(stack.topology()).active())
    except DoorbusterError:
        return  # a stack that does not answer is ensure_stack's to restart or refuse
    foreign = [o for o in owned if o.foreign]
    if foreign:
        raise _refusal(foreign)


def clear_faults(root: Path, chaos: Chaos, progress: RunProgress, *, reset_faults: bool) -> None:
    """A clean start: faults whose owner is gone removed and named; faults applied outside
    doorbuster refused (:class:`ForeignFaults`) unless ``reset_faults``, then removed, each
    named; doorbuster's own (``toxic add``, a fault held by another command) removed as well."""
    for leftover in sweep_leftovers(root, chaos):
        progress.note(f"removed a leftover fault: {leftover.describe()}")
    owned = fault_owners(root, chaos.active())
    foreign = [o for o in owned if o.foreign]
    if foreign and not reset_faults:
        raise _refusal(foreign)
    for each in foreign:
        progress.note(
            f"removing a fault applied outside doorbuster (--reset-faults): {each.fault.describe()}"
        )
    ours = [o for o in owned if not o.foreign]
    if ours:
        progress.note(
            f"removing {len(ours)} fault(s) left in force: " + ", ".join(o.describe() for o in ours)
        )
    if owned:
        chaos.reset()
        forget_removed_faults(root, chaos)


def _run_one(plan: RunPlan, stack: Stack, progress: RunProgress) -> RunResult:
    published = PublishedProgress(
        progress, stack.state.root, scenario=plan.scenario.name, run_dir=plan.run_dir
    )
    try:
        result = _run_published(plan, stack, published)
    finally:
        published.ended()
    return result


def _run_published(plan: RunPlan, stack: Stack, progress: PublishedProgress) -> RunResult:
    scenario = plan.scenario
    refuse_foreign_faults(stack, reset_faults=plan.reset_faults)
    topology = ensure_stack(stack, scenario, progress)
    chaos = Chaos(topology)
    clear_faults(stack.state.root, chaos, progress, reset_faults=plan.reset_faults)
    if scenario.seed is not None:  # always set by the plan; a stack outlives runs, so sent now
        seed_targets(topology, scenario.seed)
    run_dir = RunDir(plan.run_dir)
    run_dir.root.mkdir(parents=True, exist_ok=True)
    write_run_scenario(run_dir.root, scenario)  # Locust reads it; rewritten from what is judged
    env = locust_env(
        run_dir, stack.state.root, workers=plan.workers, targets=plan.targets, allow_hosts=plan.allow_hosts
    )
    counters = CounterSampler(topology)
    counters.read()
    started = time.time()
    interrupted = False
    group = LocustGroup(
        locust_commands(topology, run_dir, plan.workers), env, run_dir.locust_log, stack.state
    )
    try:
        with group:  # leaving it stops every Locust process and clears their pids
            try:
                group.start()
                drive_load(
                    group,
                    LiveTail(scenario, run_dir),
                    progress,
                    limit_s=plan.load_limit_s,
                    log=run_dir.locust_log,
                    each_second=counters.tick,
                )
            except KeyboardInterrupt:
                interrupted = True
                progress.note("interrupted: stopping the load and removing every fault")
    finally:
        chaos.reset()
        with contextlib.suppress(DoorbusterError):  # a stale entry is forgotten by the next command
            forget_removed_faults(stack.state.root, chaos)
    load_end = time.time()
    if not interrupted:
        group.check_exit()
    merge_left_shards(run_dir)  # the master merges them as it quits, unless it could not
    drain_cut_short = False
    drained_at: float | None = None
    if scenario.stack.keeps_ledger:  # a system of the user's has no backlog doorbuster can see
        progress.stage("drain", "waiting for the async backlog to drain (Ctrl-C to stop waiting)...")
        try:
            try:
                drained_at = wait_drained(topology, scenario.drain_timeout, since=started, tick=counters.tick)
            finally:
                progress.done()
        except KeyboardInterrupt:
            drained_at, drain_cut_short, interrupted = None, True, True
            progress.note("stopped waiting for the drain: orders not finished yet are reported in flight")
    counters.read()
    progress.collecting()
    result = collect_run(
        run_dir, scenario, topology,
        times=LoadTimes(started=started, load_end=load_end, drained_at=drained_at),
        counters=counters.counters(), interrupted=interrupted, drain_cut_short=drain_cut_short,
    )  # fmt: skip
    progress.judged(result.summary.verdicts)
    return result
