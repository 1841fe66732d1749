"""Scenario files: the load, the chaos timeline and the expectations, in one YAML file.

These are the pure definitions of a scenario file's sections; reading one from a file is
the control plane's (harness.config.scenarios.load_scenario).  A scenario is validated completely
before anything starts.

.. code-block:: yaml

    name: black-friday
    stack: {sync: {threads: 16}}          # any StackSettings override (optional)
    load:
      model: open                         # open: arrivals/s; closed: users per lane
      stages:
        - {name: baseline, duration: 60s, rate: 4}
        - {name: peak, duration: 120s, rate: 12}
    chaos:
      - {name: email-slow, at: 90s, for: 60s, dependency: email, type: latency,
         attributes: {latency: 5000}}
    expectations:
      - "sync.checkout.p50 >= 1.8s at baseline"
      - "no lost orders"
"""

from __future__ import annotations

import re
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.errors import ConfigError
from model.expectations import Expectation, parse_expectation
from model.faults import HTTP_FAULTS, TOXIC_TYPES, FaultSpec
from model.settings import Broker, StackSettings, SyncLaneSettings
from model.topology import LANES, Topology
from model.validation import overlay, validation_problems

__all__ = [
    "ArrivalProcess",
    "ChaosStep",
    "Impatience",
    "LaneRule",
    "LoadSpec",
    "Metastability",
    "Polling",
    "ReplaySpec",
    "Scenario",
    "Stage",
    "SweepPolicy",
    "SweepSection",
    "parse_duration",
    "parse_seconds",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_seconds(value: Any) -> float:
    """``"90s"``, ``"2m"``, ``"500ms"``, ``1.5`` -> seconds (a number means seconds)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 2m or 500ms")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"expected a duration like 30s, 2m or 500ms, got {value!r}")
        seconds = float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError("a duration can not be negative")
    return seconds


def parse_duration(value: Any, *, most_s: float | None = None) -> float:
    """A positive duration given as an option or an argument: ``"90s"``, ``"2m"``, ``"500ms"``,
    ``"1.5"`` or ``1.5`` (seconds) -> seconds, at most ``most_s`` if given; else ConfigError.

    >>> parse_duration("2m"), parse_duration("500ms")
    (120.0, 0.5)
    """
    try:
        seconds = parse_seconds(value)
    except ValueError as exc:
        raise ConfigError(f"duration {value!r}: {exc}") from None
    if not seconds > 0:  # NaN too
        raise ConfigError(f"duration {value!r} must be positive")
    if most_s is not None and seconds > most_s:
        raise ConfigError(f"duration {value!r} must be at most {most_s:g}s")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stage(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    duration: float
    # open model: arrivals per second per lane; closed model: users per lane
    rate: float = Field(ge=0, le=5000)

    _seconds = field_validator("duration", mode="before")(parse_seconds)


class Impatience(_Model):
    """Shoppers who give up on a slow checkout and press the button again."""

    timeout: float = 10.0
    retries: int = Field(default=0, ge=0, le=5)

    _seconds = field_validator("timeout", mode="before")(parse_seconds)


class Polling(_Model):
    """How the async shopper follows ``Location`` until its order is fulfilled."""

    initial: float = 0.5
    max: float = 5.0
    give_up: float = 300.0

    _seconds = field_validator("initial", "max", "give_up", mode="before")(parse_seconds)


# How an open model's arrivals are spaced: evenly (k6's constant-arrival-rate), as a Poisson
# process at the stages' rates (exponential gaps, as independent shoppers arrive), or as an
# access log's requests were spaced (``replay``).
ArrivalProcess = Literal["even", "poisson", "replay"]


class LaneRule(_Model):
    """A replayed request goes to ``lane`` when its path matches ``path`` (a regular
    expression, searched); the first rule that matches wins."""

    path: str
    lane: str

    @field_validator("path")
    @classmethod
    def _compiles(cls, path: str) -> str:
        try:
            re.compile(path)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {path!r} ({exc})") from None
        return path


class ReplaySpec(_Model):
    """Arrivals at the times of an access log's requests (Common or Combined Log Format, or
    JSON lines with ``timestamp``, ``method`` and ``path``), ``speed`` times as fast, each to
    the lane of the first rule its path matches; a request no rule matches is not replayed.
    The replay ends with the stages' total duration, like any load."""

    file: str
    format: Literal["auto", "clf", "jsonl"] = "auto"
    speed: float = Field(default=1.0, gt=0, le=1000)
    lanes: tuple[LaneRule, ...] = Field(min_length=1)


class LoadSpec(_Model):
    model: Literal["open", "closed"] = "open"
    arrivals: ArrivalProcess = "even"
    replay: ReplaySpec | None = None
    lanes: tuple[str, ...] = LANES
    stages: tuple[Stage, ...] = Field(min_length=1)
    think_time: float = 1.0  # closed model: pause between a shopper's orders
    impatient: Impatience = Impatience()
    poll: Polling = Polling()
    max_in_flight: int = Field(default=5000, ge=1, le=100_000)  # open model, per lane

    _seconds = field_validator("think_time", mode="before")(parse_seconds)

    @field_validator("lanes")
    @classmethod
    def _known_lanes(cls, lanes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [lane for lane in lanes if lane not in LANES]
        if unknown or not lanes:
            raise ValueError(f"expected lanes from {list(LANES)}, got {list(lanes)}")
        return lanes

    @model_validator(mode="after")
    def _unique_stage_names(self) -> LoadSpec:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        return self

    @model_validator(mode="after")
    def _arrivals_of_an_open_model(self) -> LoadSpec:
        if self.arrivals != "even" and self.model != "open":
            raise ValueError(
                f"arrivals: {self.arrivals} spaces an open model's arrivals; this load is closed"
            )
        if (self.arrivals == "replay") != (self.replay is not None):
            raise ValueError("arrivals: replay and a replay: section go together (the log to replay)")
        for rule in self.replay.lanes if self.replay else ():
            if rule.lane not in self.lanes:
                raise ValueError(
                    f"replay.lanes: {rule.lane!r} is not a lane of this load ({list(self.lanes)})"
                )
        return self

    @property
    def duration_s(self) -> float:
        return sum(stage.duration for stage in self.stages)

    def stage_at(self, elapsed_s: float) -> Stage | None:
        """The stage running ``elapsed_s`` seconds into the load; None once it has ended."""
        end = 0.0
        for stage in self.stages:
            end += stage.duration
            if elapsed_s < end:
                return stage
        return None

    def stage_window(self, name: str) -> tuple[float, float]:
        start = 0.0
        for stage in self.stages:
            if stage.name == name:
                return start, start + stage.duration
            start += stage.duration
        raise KeyError(name)


class ChaosStep(_Model):
    """One fault on the timeline: from ``at`` for ``for_`` seconds."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    at: float
    for_: float = Field(alias="for")
    dependency: str
    lanes: Literal["sync", "async", "both"] = "both"
    type: str  # a Toxiproxy toxic type, http_error, http_delay, or down
    attributes: dict[str, float] = Field(default_factory=dict)
    toxicity: float = Field(default=1.0, ge=0, le=1)
    stream: Literal["upstream", "downstream"] = "downstream"

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    _seconds = field_validator("at", "for_", mode="before")(parse_seconds)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = [*TOXIC_TYPES, *HTTP_FAULTS, "down"]
        if value not in known:
            raise ValueError(f"expected one of {', '.join(known)}, got {value!r}")
        return value

    @property
    def lane_tuple(self) -> tuple[str, ...]:
        return LANES if self.lanes == "both" else (self.lanes,)

    @property
    def end(self) -> float:
        return self.at + self.for_

    def fault(self) -> FaultSpec:
        return FaultSpec(
            dependency=self.dependency,
            type=self.type,
            lanes=self.lane_tuple,
            attributes={k: int(v) if float(v).is_integer() else v for k, v in self.attributes.items()},
            toxicity=self.toxicity,
            stream=self.stream,
            name=f"doorbuster_{self.name}",
        )


class Metastability(_Model):
    """A lane recovered once its success rate per offered arrival, over every ``smoothing``
    window until ``window`` after the trigger's removal, is at least ``fraction`` of its
    pre-trigger rate (harness.analysis.recovery)."""

    window: float = 60.0
    fraction: float = Field(default=0.8, gt=0, le=1.5)
    # Long enough to hold a few arrivals at the scenarios' rates, short enough to resolve seconds.
    # At least one of the detector's bins (1 s times the scenario's time_scale: Scenario checks).
    smoothing: float = Field(default=5.0, gt=0, le=60)

    _seconds = field_validator("window", "smoothing", mode="before")(parse_seconds)


class SweepPolicy(_Model):
    """A named overlay of the sync lane's settings: one set of trials per policy."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    sync: dict[str, Any] = Field(default_factory=dict)


def _positive_seconds(values: Any) -> Any:
    if not isinstance(values, list | tuple):
        raise ValueError("expected a list of durations like [10s, 30s]")
    return tuple(parse_seconds(v) for v in values)


class SweepSection(_Model):
    """``doorbuster sweep``'s grid (harness.sweep.runner): offered loads by one chaos step's size
    and/or duration, with trials per cell, the observation window after the trigger's removal,
    and optionally named sync-lane policies."""

    step: str
    loads: tuple[float, ...] = Field(min_length=1)
    attribute: str | None = None
    values: tuple[float, ...] = ()
    durations: tuple[float, ...] = ()
    trials: int = Field(default=1, ge=1, le=20)
    boundary_trials: int = Field(default=0, ge=0, le=20)
    observe: float = Field(gt=0)
    refine: int = Field(default=0, ge=0, le=6)
    policies: tuple[SweepPolicy, ...] = ()
    # How long to wait between trials for a clean stack before restarting it.
    settle: float = Field(default=60.0, gt=0)
    # The sweep's default time scale (``--time-scale`` overrides); None: as written.
    time_scale: float | None = Field(default=None, gt=0, le=10)
    max_time: float = Field(default=1800.0, gt=0)

    _seconds = field_validator("observe", "settle", "max_time", mode="before")(parse_seconds)
    _durations = field_validator("durations", mode="before")(_positive_seconds)

    @model_validator(mode="after")
    def _grid(self) -> SweepSection:
        if any(load <= 0 for load in self.loads):
            raise ValueError(f"loads: every offered rate must be positive, got {list(self.loads)}")
        if (self.attribute is None) != (not self.values):
            raise ValueError("attribute and values go together: name the attribute and list its values")
        if not self.values and not self.durations:
            raise ValueError("give the step's attribute and values, or durations, or both")
        if any(v <= 0 for v in self.values):
            raise ValueError(f"values: every value must be positive, got {list(self.values)}")
        if any(d <= 0 for d in self.durations):
            raise ValueError(f"durations: every duration must be positive, got {list(self.durations)}")
        for name, seq in (("loads", self.loads), ("values", self.values), ("durations", self.durations)):
            if len(set(seq)) != len(seq):
                raise ValueError(f"{name}: each value once, got {list(seq)}")
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError(f"policies: names must be unique, got {names}")
        return self


# Expectations only an order ledger decides: lost orders, duplicated side effects, drains.
_LEDGER_KINDS = ("no_loss", "no_duplicates", "drains")


class Scenario(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    stack: StackSettings = StackSettings()
    # A broker shootout: the whole run once per broker, in turn, each on a fresh stack.
    brokers: tuple[Broker, ...] = ()
    load: LoadSpec
    chaos: tuple[ChaosStep, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    metastability: Metastability = Metastability()
    drain_timeout: float = 180.0
    # The scale this scenario's times are in: 1 as written; harness.config.timescale.time_scaled sets
    # it (``doorbuster run --time-scale``), and the recovery detector's bins are this long.
    time_scale: float = Field(default=1.0, gt=0, le=10)
    # ``doorbuster sweep``'s grid; a run ignores it.
    sweep: SweepSection | None = None
    # Every random draw of a run (arrivals, shoppers' choices, the targets' retry jitter and
    # service times) comes from generators seeded from it; a run without one picks one and
    # records it (``doorbuster run --seed``).
    seed: int | None = Field(default=None, ge=0, lt=2**63)

    _seconds = field_validator("drain_timeout", mode="before")(parse_seconds)

    @field_validator("expectations", mode="before")
    @classmethod
    def _parse_expectations(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list of expectation strings")
        return tuple(parse_expectation(v) if isinstance(v, str) else v for v in value)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        topology = Topology.from_settings(self.stack)
        if len(set(self.brokers)) != len(self.brokers):
            raise ValueError(f"brokers: each broker once, got {list(self.brokers)}")
        names = [step.name for step in self.chaos]
        if len(set(names)) != len(names):
            raise ValueError(f"chaos step names must be unique, got {names}")
        if self.metastability.smoothing < self.time_scale - 1e-9:
            raise ValueError(
                f"metastability.smoothing: at least {self.time_scale:g}s (one second at time scale "
                f"{self.time_scale:g}), got {self.metastability.smoothing:g}s"
            )
        for i, step in enumerate(self.chaos):
            # a time-scaled scenario's sums may be off by a rounding error, no more
            if step.end > self.load.duration_s * (1 + 1e-9):
                raise ValueError(
                    f"chaos.{i} ({step.name}) ends at {step.end:g}s, after the load "
                    f"({self.load.duration_s:g}s)"
                )
            if step.type != "down":
                try:
                    step.fault().validate(topology)
                except ConfigError as exc:
                    raise ValueError(f"chaos.{i} ({step.name}): {exc}") from None
            else:
                for lane in topology.lanes_with(step.dependency, step.lane_tuple):
                    try:
                        topology.proxy(lane, step.dependency)
                    except ConfigError as exc:
                        raise ValueError(f"chaos.{i} ({step.name}): {exc}") from None
        missing = [lane for lane in self.load.lanes if lane not in topology.lanes]
        if missing:
            raise ValueError(
                f"load.lanes: the system has no {' or '.join(missing)} lane; "
                f"its lanes: {list(topology.lanes)}"
            )
        windows = set(names) | {stage.name for stage in self.load.stages} | {"baseline"}
        for i, expectation in enumerate(self.expectations):
            if expectation.window is not None and expectation.window not in windows:
                raise ValueError(
                    f"expectations.{i} names {expectation.window!r}, which is neither a chaos "
                    f"step nor a stage; known: {sorted(windows)}"
                )
            if expectation.kind in ("drains", "recovers") and expectation.window not in names:
                # A drain or a recovery is timed from a fault's removal; a stage has none.
                raise ValueError(
                    f"expectations.{i} ({expectation.text!r}) is timed after {expectation.window!r}, "
                    f"which is not a chaos step; chaos steps: {names or 'none'}"
                )
            if expectation.kind in _LEDGER_KINDS and not self.stack.keeps_ledger:
                name = self.stack.system.name if self.stack.system else "checkout"
                raise ValueError(
                    f"expectations.{i} ({expectation.text!r}) needs an order ledger, and system "
                    f"{name} keeps none (ledger: false); expect latency, errors or recovery instead"
                )
            if expectation.lane is not None and expectation.lane not in self.load.lanes:
                raise ValueError(f"expectations.{i} is about lane {expectation.lane!r}, which gets no load")
        if self.sweep is not None:
            self._check_sweep(self.sweep)
        return self

    def _check_sweep(self, sweep: SweepSection) -> None:
        steps = {step.name: step for step in self.chaos}
        step = steps.get(sweep.step)
        if step is None:
            raise ValueError(f"sweep.step: {sweep.step!r} is not a chaos step; chaos steps: {sorted(steps)}")
        if step.at <= 0:
            raise ValueError(f"sweep.step: {step.name} starts at 0 s; a trial needs a baseline before it")
        if sweep.attribute is not None:
            schema = TOXIC_TYPES.get(step.type) or HTTP_FAULTS.get(step.type) or {}
            if sweep.attribute not in schema:
                raise ValueError(
                    f"sweep.attribute: {step.type} (step {step.name}) has no attribute "
                    f"{sweep.attribute!r}; it takes {', '.join(schema) or 'none'}"
                )
        if sweep.observe < self.metastability.smoothing:
            raise ValueError(
                f"sweep.observe: at least one metastability.smoothing window "
                f"({self.metastability.smoothing:g}s), got {sweep.observe:g}s"
            )
        base = self.stack.sync.model_dump(by_alias=True)
        for i, policy in enumerate(sweep.policies):
            try:
                SyncLaneSettings.model_validate(overlay(base, policy.sync))
            except pydantic.ValidationError as exc:
                raise ValueError(
                    f"sweep.policies.{i} ({policy.name}): sync.{validation_problems(exc)}"
                ) from None

    @property
    def duration_s(self) -> float:
        return self.load.duration_s

    def baseline_window(self) -> tuple[float, float]:
        """Before the first fault (or the first stage, if it is called baseline)."""
        if any(stage.name == "baseline" for stage in self.load.stages):
            return self.load.stage_window("baseline")
        first = min((step.at for step in self.chaos), default=self.duration_s)
        return 0.0, first

    def window(self, name: str) -> tuple[float, float]:
        if name == "baseline":
            return self.baseline_window()
        for step in self.chaos:
            if step.name == name:
                return step.at, step.end
        return self.load.stage_window(name)
