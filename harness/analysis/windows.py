"""The window of the run an expectation names: all of it, a stage, or a fault as applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.analysis.inputs import FaultWindow, RunInputs

__all__ = ["ExpectationWindow", "expectation_window"]


@dataclass(frozen=True)
class ExpectationWindow:
    """An expectation's window in run seconds, and the fault it is about, as applied."""

    start: float
    end: float
    fault: FaultWindow | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start_s": round(self.start, 2), "end_s": round(self.end, 2)}
        if self.fault is not None:
            out["fault"] = self.fault.as_json()
        return out


def expectation_window(
    inputs: RunInputs, name: str | None, mode: str | None
) -> tuple[ExpectationWindow, str | None]:
    """The window an expectation names, and why it can not be judged over it (or None)."""
    if name is None:
        return ExpectationWindow(0.0, inputs.load_end), None
    fault = next((f for f in inputs.faults if f.name == name), None)
    steps = {step.name for step in inputs.scenario.chaos}
    if fault is not None:
        window = ExpectationWindow(fault.start, fault.end, fault)
    elif name in steps:
        start, end = inputs.scenario.window(name)
        return ExpectationWindow(start, end), f"fault {name} has no record of being applied"
    else:
        window = ExpectationWindow(*inputs.scenario.window(name))
    if mode == "after":
        window = ExpectationWindow(window.end, inputs.load_end, window.fault)
    if fault is not None and not fault.applied:
        return window, f"fault {name} was never applied"
    if window.end <= window.start:
        return window, f"the window {window.start:.1f}-{window.end:.1f} s is empty: the load ended first"
    return window, None
