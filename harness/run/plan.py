"""Planning a run: which scenario (scaled, with this machine's settings), into which directory,
with which load targets and workers, and how long the load may take at most.

Everything here is decided, and every bad option refused (exit 2), before a process starts or
a request is sent.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic

from harness.config.scenarios import load_scenario
from harness.config.systems import check_hosts
from harness.config.timescale import time_scaled
from harness.load.access_log import read_access_log
from harness.records.run_dir import new_run_dir
from harness.stack.control import Stack
from model.errors import ConfigError, DoorbusterError
from model.scenario import Scenario
from model.settings import PortSettings
from model.topology import LANES, is_loopback

__all__ = [
    "RunOptions",
    "RunPlan",
    "check_targets",
    "machine_scenario",
    "parse_targets",
    "plan_run",
    "plan_trial",
    "port_settings",
    "scaled",
]

# Beyond the scenario's own times (load, drain, giving up on an order): Locust's start and stop.
_LOAD_SLACK_S = 120
_MAX_WORKERS = 64


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    scenario: str
    duration_s: float | None = None
    peak_rps: float | None = None
    out: Path | None = None
    workers: int = 0
    # The machine's concern, not the scenario's: by default those of the running stack.
    ports: PortSettings | None = None
    # The whole experiment in this many times its time (harness.config.timescale), the stack with it.
    time_scale: float | None = None
    # lane -> base URL, instead of the stack's order services; off loopback only if allowed
    targets: dict[str, str] | None = None
    allow_hosts: tuple[str, ...] = ()
    # The system under test (--system), over the scenario's own.
    system: str | None = None
    # Remove faults applied outside doorbuster instead of refusing to start (exit 3).
    reset_faults: bool = False
    # Every random draw of the run (arrivals, shoppers' choices, the targets' jitter) from
    # this; default: the scenario's, else one picked now and recorded.
    seed: int | None = None


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """One run, decided: the scenario as it will be judged, where its files go, the load."""

    scenario: Scenario
    run_dir: Path
    workers: int = 0
    targets: dict[str, str] | None = None
    allow_hosts: tuple[str, ...] = ()
    reset_faults: bool = False

    @property
    def load_limit_s(self) -> float:
        """How long Locust may run before the run gives up on it (exit 3)."""
        s = self.scenario
        return s.duration_s + s.drain_timeout + s.load.poll.give_up + _LOAD_SLACK_S

    def for_broker(self, broker: str) -> RunPlan:
        """A shootout's run on one broker, in its own directory inside this one."""
        scenario = self.scenario.model_copy(
            update={"brokers": (), "stack": self.scenario.stack.model_copy(update={"broker": broker})}
        )
        return replace(self, scenario=scenario, run_dir=self.run_dir / broker)


def port_settings(base_port: int | None, toxiproxy_port: int | None) -> PortSettings | None:
    """``--base-port`` and ``--toxiproxy-port`` as the run's ports (None: the running stack's)."""
    if base_port is None and toxiproxy_port is None:
        return None
    try:
        return PortSettings(
            base=base_port or PortSettings().base,
            toxiproxy_api=toxiproxy_port or PortSettings().toxiproxy_api,
        )
    except pydantic.ValidationError as exc:
        raise ConfigError(f"ports: {exc.errors()[0]['msg']}") from None


def parse_targets(items: list[str]) -> dict[str, str]:
    """``--target LANE=URL`` options as lane -> URL (checked by :func:`check_targets`)."""
    targets: dict[str, str] = {}
    for item in items:
        lane, sep, url = item.partition("=")
        if not sep or not url:
            raise ConfigError(f"--target {item!r}: expected LANE=URL, like sync=http://127.0.0.1:9000")
        targets[lane] = url
    return targets


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


def _with_machine_settings(scenario: Scenario, ports: PortSettings | None, stack: Stack) -> Scenario:
    if ports is None and stack.supervisor_pid() is not None:
        with contextlib.suppress(DoorbusterError):
            ports = stack.topology().settings.ports
    update: dict[str, Any] = {}
    if ports is not None:
        update["ports"] = ports
    if not update:
        return scenario
    return scenario.model_copy(update={"stack": scenario.stack.model_copy(update=update)})


def machine_scenario(scenario: Scenario, stack: Stack) -> Scenario:
    """``scenario`` with this machine's settings (the running stack's ports), as a run has it."""
    return _with_machine_settings(scenario, None, stack)


def plan_run(options: RunOptions, stack: Stack) -> RunPlan:
    """``doorbuster run``'s options decided; the stack is only asked for its ports, and only
    once the run directory is known to be usable."""
    if options.targets:
        check_targets(options.targets, options.allow_hosts)
    base, _ = load_scenario(options.scenario, system=options.system)
    if base.stack.system is not None:
        check_hosts(base.stack.system, options.allow_hosts)
    if base.load.arrivals == "replay" and options.peak_rps is not None:
        raise ConfigError("--peak-rps scales the stages' rates; a replay's arrivals come from its log")
    scenario = scaled(base, duration_s=options.duration_s, peak_rps=options.peak_rps)
    if options.time_scale is not None:
        scenario = time_scaled(scenario, options.time_scale)
    if options.workers < 0 or options.workers > _MAX_WORKERS:
        raise ConfigError(f"--workers must be from 0 to {_MAX_WORKERS}")
    scenario = seeded(scenario, options.seed)
    run_dir = new_run_dir(options.out, scenario.name)
    scenario = _with_machine_settings(scenario, options.ports, stack)
    if scenario.brokers and options.targets:
        raise ConfigError("a broker shootout runs the harness' own stacks; --target can not go with it")
    return RunPlan(
        scenario=scenario,
        run_dir=run_dir,
        workers=options.workers,
        targets=options.targets,
        allow_hosts=options.allow_hosts,
        reset_faults=options.reset_faults,
    )


def seeded(scenario: Scenario, seed: int | None = None) -> Scenario:
    """``scenario`` with its run's seed: ``seed``, else its own, else one picked now; and its
    replayed log read and checked whole, before anything starts."""
    if seed is not None and not 0 <= seed < 2**63:
        raise ConfigError(f"--seed: expected a whole number from 0 to 2**63 - 1, got {seed}")
    if scenario.load.replay is not None:
        read_access_log(Path(scenario.load.replay.file), scenario.load.replay.format)
    chosen = seed if seed is not None else scenario.seed
    return scenario.model_copy(update={"seed": secrets.randbits(63) if chosen is None else chosen})


def plan_trial(scenario: Scenario, run_dir: Path, stack: Stack, *, reset_faults: bool = False) -> RunPlan:
    """A run of a scenario built by the caller (``doorbuster sweep``'s trials) into
    ``run_dir``, which must be new or empty."""
    scenario = machine_scenario(seeded(scenario), stack)
    return RunPlan(scenario=scenario, run_dir=new_run_dir(run_dir, scenario.name), reset_faults=reset_faults)
