"""A scenario run in ``scale`` times its time: the same experiment, not a different one.

``StackSettings.time_scale`` shrinks the latencies, timeouts and back-offs the targets apply
themselves.  A faithful scaling shrinks the scenario's own times with them and raises its
rates, so that every finite capacity (thread pools, queues, a downstream's ``concurrency``:
counts, unchanged) is used as much as at scale 1:

- stage durations, chaos ``at`` and ``for``, a fault's attributes that are times (Toxiproxy's
  ``latency``, ``jitter``, ``timeout``, ``delay``; an HTTP fault's ``latency``, ``jitter``),
  the shopper's impatience, polling and think time, ``drain_timeout``, the metastability window
  and smoothing, and the expectations' latencies and durations: times ``scale``;
- open-model arrival rates, a bandwidth, and the expectations' throughputs: divided by it;
- a ``sweep:`` grid likewise: its loads / S, its values as the step's attribute, its
  durations and observation window x S;
- counts (closed-model users, retries, ``max_in_flight``), fractions and byte sizes: unchanged.

The recovery detector's bins are ``scenario.time_scale`` seconds long, so a scaled run is
judged at the same resolution in the experiment's time.

>>> from harness.config.scenarios import load_scenario
>>> storm = time_scaled(load_scenario("retry-storm")[0], 0.5)
>>> storm.load.stages[0].duration, storm.load.stages[0].rate, storm.chaos[0].attributes
(30.0, 12.0, {'latency': 1000.0})
"""

from __future__ import annotations

from typing import Any

import pydantic

from model.errors import ConfigError
from model.expectations import time_scaled_expectation
from model.faults import TOXIC_TYPES
from model.scenario import Scenario
from model.validation import validation_problems

__all__ = ["FAULT_RATES", "FAULT_TIMES", "check_time_scale", "time_scaled"]

# Fault attributes that are times (ms; slicer's delay in microseconds), by fault type.
FAULT_TIMES: dict[str, frozenset[str]] = {
    "latency": frozenset({"latency", "jitter"}),
    "slow_close": frozenset({"delay"}),
    "timeout": frozenset({"timeout"}),
    "reset_peer": frozenset({"timeout"}),
    "slicer": frozenset({"delay"}),
    "http_delay": frozenset({"latency", "jitter"}),
}
# Fault attributes that are per second: bandwidth's KB/s.  (http_* ``rate`` is a fraction.)
FAULT_RATES: dict[str, frozenset[str]] = {"bandwidth": frozenset({"rate"})}


def _attribute(fault_type: str, key: str, value: float, scale: float) -> float:
    if key in FAULT_TIMES.get(fault_type, ()):
        scaled = value * scale
    elif key in FAULT_RATES.get(fault_type, ()):
        scaled = value / scale
    else:
        return value
    if fault_type in TOXIC_TYPES:  # Toxiproxy takes whole numbers only
        floor = 1 if key in FAULT_RATES.get(fault_type, ()) and value > 0 else 0
        return float(max(floor, round(scaled)))
    return scaled


def _scale_sweep(
    sweep: dict[str, Any], chaos: list[dict[str, Any]], scale: float, *, open_model: bool
) -> None:
    """The sweep's grid in the scaled experiment: loads / S; the varied attribute's values as
    the step's own (x S when a time); durations, observe and settle x S.  Its default
    ``time_scale`` is what ``doorbuster sweep`` applies (this), and the bound on the sweep's
    wall time is the user's: both are kept as written."""
    step = next((s for s in chaos if s["name"] == sweep["step"]), None)
    if open_model:  # closed: the loads are numbers of users
        sweep["loads"] = [load / scale for load in sweep["loads"]]
    if step is not None and sweep.get("attribute") is not None:
        sweep["values"] = [_attribute(step["type"], sweep["attribute"], v, scale) for v in sweep["values"]]
    sweep["durations"] = [d * scale for d in sweep["durations"]]
    sweep["observe"] *= scale
    sweep["settle"] *= scale


def check_time_scale(scale: float | None) -> None:
    """A ``--time-scale`` (None: not given) the settings accept; checked before anything runs."""
    if scale is not None and not 0 < scale <= 10:
        raise ConfigError(f"--time-scale must be more than 0 and at most 10, got {scale:g}")


def time_scaled(scenario: Scenario, scale: float) -> Scenario:
    """``scenario`` run in ``scale`` times its time (0.5: in half the time, at twice the rate);
    the stack runs at the scenario's new scale too.  Scale 1 gives the scenario back as it was."""
    check_time_scale(scale)
    data: dict[str, Any] = scenario.model_dump(by_alias=True)
    load = data["load"]
    for stage in load["stages"]:
        stage["duration"] *= scale
        if load["model"] == "open":  # closed: the rate is a number of users
            stage["rate"] /= scale
    load["think_time"] *= scale
    if load.get("replay") is not None:  # the log's gaps, in the new time too
        load["replay"]["speed"] /= scale
    load["impatient"]["timeout"] *= scale
    for key in ("initial", "max", "give_up"):
        load["poll"][key] *= scale
    for step in data["chaos"]:
        step["at"] *= scale
        step["for"] *= scale
        step["attributes"] = {
            key: _attribute(step["type"], key, value, scale) for key, value in step["attributes"].items()
        }
    if data.get("sweep") is not None:
        _scale_sweep(data["sweep"], data["chaos"], scale, open_model=load["model"] == "open")
    data["metastability"]["window"] *= scale
    data["metastability"]["smoothing"] *= scale
    data["drain_timeout"] *= scale
    data["expectations"] = [time_scaled_expectation(e, scale).text for e in scenario.expectations]
    data["time_scale"] = scenario.time_scale * scale
    data["stack"]["time_scale"] = data["time_scale"]
    try:
        return Scenario.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{scenario.name} at time scale {scale:g}: {validation_problems(exc)}") from None
