"""A sweep's grid: its cells, and the trial scenario that runs one of them.

A cell is one offered load, one size and/or duration of the swept chaos step, and optionally
one named sync-lane policy.  Its trial is the scenario cut down to that one question: a
baseline at the load, the step alone with the cell's size and duration, then the same load
until the observation window after the step's removal has passed, and a quarter of it more
(at least one smoothing window): a removal is acknowledged after its planned end, seconds
later on an overloaded downstream, and the whole window must still be judged.
``metastability.window`` is the observation window.

The scenario's own expectations are about its own timeline (recovery within so long after
its faults), which a cell changes; a trial keeps only "no lost orders", which holds in every
trial of a correct system, so a trial that loses an order is flagged.

>>> from harness.config.scenarios import load_scenario
>>> storm = load_scenario("retry-storm")[0]
>>> cell = Cell(load=9.0, value=1000.0, duration=30.0, policy=None)
>>> trial = trial_scenario(storm, "latency", cell)
>>> [(s.name, s.duration, s.rate) for s in trial.load.stages]
[('baseline', 60.0, 9.0), ('after', 105.0, 9.0)]
>>> trial.chaos[0].attributes, trial.chaos[0].for_, trial.metastability.window
({'latency': 1000.0}, 30.0, 60.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic

from model.errors import ConfigError
from model.scenario import Scenario, SweepSection
from model.validation import overlay, validation_problems

__all__ = ["Cell", "grid_cells", "grid_record", "sweep_of", "trial_scenario"]

TRIAL_EXPECTATIONS = ("no lost orders",)


@dataclass(frozen=True, kw_only=True, order=True)
class Cell:
    """One point of the grid; ``value`` is the swept attribute's, ``duration`` the step's
    ``for`` (None: not varied, the step's own)."""

    policy: str | None
    load: float
    value: float | None
    duration: float | None

    @property
    def id(self) -> str:
        """A directory name: ``load6-v1000-for30-seed``."""
        parts = [f"load{self.load:.6g}"]
        if self.value is not None:
            parts.append(f"v{self.value:g}")
        if self.duration is not None:
            parts.append(f"for{self.duration:g}")
        if self.policy is not None:
            parts.append(self.policy)
        return "-".join(parts)

    def trigger(self, attribute: str | None) -> dict[str, float]:
        """What was varied, as sweep.json names it: ``{"latency": 1000, "for": 30}``."""
        trigger: dict[str, float] = {}
        if attribute is not None and self.value is not None:
            trigger[attribute] = self.value
        if self.duration is not None:
            trigger["for"] = self.duration
        return trigger

    def as_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "load": self.load, "value": self.value, "duration": self.duration}

    @classmethod
    def from_json(cls, data: Any) -> Cell:
        if not isinstance(data, dict):
            raise ValueError("a cell: expected an object with policy, load, value and duration")

        def number(key: str) -> float | None:
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"a cell's {key}: expected a number, got {value!r}")
            return None if value is None else float(value)

        policy = data.get("policy")
        load = number("load")
        if load is None or (policy is not None and not isinstance(policy, str)):
            raise ValueError("a cell: expected a load and a policy name or null")
        return cls(policy=policy, load=load, value=number("value"), duration=number("duration"))


def sweep_of(scenario: Scenario) -> SweepSection:
    if scenario.sweep is None:
        raise ConfigError(
            f"{scenario.name} has no sweep: section; add one to sweep it (see docs/lab/sweep.md)"
        )
    return scenario.sweep


def grid_cells(sweep: SweepSection) -> list[Cell]:
    """Every cell of the declared grid, policy by policy, then load, then trigger."""
    policies: list[str | None] = [p.name for p in sweep.policies] or [None]
    values: list[float | None] = list(sweep.values) or [None]
    durations: list[float | None] = list(sweep.durations) or [None]
    return [
        Cell(policy=policy, load=load, value=value, duration=duration)
        for policy in policies
        for load in sweep.loads
        for value in values
        for duration in durations
    ]


def grid_record(scenario: Scenario) -> dict[str, Any]:
    """What makes two sweeps the same grid (resume refuses another): the scaled section,
    the time scale, and the scenario the trials are cut from."""
    sweep = sweep_of(scenario)
    rest = scenario.model_dump(mode="json", by_alias=True, exclude={"sweep"})
    rest["expectations"] = [e.text for e in scenario.expectations]
    return {
        "scenario": scenario.name,
        "time_scale": scenario.time_scale,
        "step": sweep.step,
        "attribute": sweep.attribute,
        "loads": list(sweep.loads),
        "values": list(sweep.values),
        "durations": list(sweep.durations),
        "trials": sweep.trials,
        "boundary_trials": sweep.boundary_trials,
        "observe_s": sweep.observe,
        "refine": sweep.refine,
        "policies": [p.model_dump(mode="json") for p in sweep.policies],
        "base": rest,
    }


def trial_scenario(scenario: Scenario, attribute: str | None, cell: Cell) -> Scenario:
    """The scenario of one trial of ``cell`` (see the module's docstring)."""
    sweep = sweep_of(scenario)
    step = next(s for s in scenario.chaos if s.name == sweep.step)
    data = scenario.model_dump(by_alias=True)
    duration = cell.duration if cell.duration is not None else step.for_
    after = duration + sweep.observe + max(scenario.metastability.smoothing, sweep.observe / 4)
    data["load"]["stages"] = [
        {"name": "baseline", "duration": step.at, "rate": cell.load},
        {"name": "after", "duration": after, "rate": cell.load},
    ]
    trigger = step.model_dump(by_alias=True)
    trigger["for"] = duration
    if attribute is not None and cell.value is not None:
        trigger["attributes"] = {**trigger["attributes"], attribute: cell.value}
    data["chaos"] = [trigger]
    data["metastability"]["window"] = sweep.observe
    data["expectations"] = list(TRIAL_EXPECTATIONS)
    data["sweep"] = None
    if cell.policy is not None:
        policy = next((p for p in sweep.policies if p.name == cell.policy), None)
        if policy is None:
            raise ConfigError(f"sweep: no policy named {cell.policy!r}")
        data["stack"]["sync"] = overlay(data["stack"]["sync"], policy.sync)
    try:
        return Scenario.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{scenario.name}, sweep cell {cell.id}: {validation_problems(exc)}") from None
