"""The chaos timeline: applies each fault at its time, removes it after its duration, and
removes whatever is still applied when it is stopped, however it is stopped.

It runs wherever the load runs (the Locust master, or a plain ``locust -f`` with its web UI),
so the faults line up with the traffic; it records what it did, with wall-clock times, in
``chaos.json`` beside the run's other files.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.files import read_json
from harness.faults.chaos import Chaos
from harness.faults.leases import FaultLease
from model.errors import ConfigError, DoorbusterError
from model.scenario import ChaosStep

__all__ = ["ChaosRecord", "ChaosTimeline", "FaultRecord", "read_chaos_record"]

log = logging.getLogger("doorbuster.timeline")


@dataclass
class FaultRecord:
    """One step as it happened: a fault is in force from the moment Toxiproxy (or the service)
    acknowledged it until its removal was acknowledged; wall-clock seconds."""

    name: str
    dependency: str
    lanes: tuple[str, ...]
    type: str
    attributes: dict[str, float]
    planned_start_s: float
    planned_end_s: float
    requested_at: float | None = None
    started_at: float | None = None  # the apply acknowledged; None: it never applied
    error: str | None = None  # why it did not apply
    removal_requested_at: float | None = None
    ended_at: float | None = None  # the removal acknowledged; None: not (yet) removed
    removal_error: str | None = None

    @property
    def applied(self) -> bool:
        return self.started_at is not None

    @property
    def removed(self) -> bool:
        return self.ended_at is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dependency": self.dependency,
            "lanes": list(self.lanes),
            "type": self.type,
            "attributes": self.attributes,
            "planned_start_s": self.planned_start_s,
            "planned_end_s": self.planned_end_s,
            "requested_at": self.requested_at,
            "started_at": self.started_at,
            "applied": self.applied,
            "error": self.error,
            "removal_requested_at": self.removal_requested_at,
            "ended_at": self.ended_at,
            "removed": self.removed,
            "removal_error": self.removal_error,
        }

    @classmethod
    def from_json(cls, obj: Any) -> FaultRecord:
        """The record :meth:`as_json` wrote; ValueError saying what is wrong with it."""
        if not isinstance(obj, dict):
            raise ValueError(f"a fault record is a JSON object, not {type(obj).__name__}")
        missing = [k for k in _RECORD_FIELDS if k not in obj]
        if missing:
            raise ValueError(f"a fault record lacks {', '.join(missing)}")
        for key in ("name", "dependency", "type"):
            if not isinstance(obj[key], str):
                raise ValueError(f"a fault record's {key} is a string, not {obj[key]!r}")
        for key in ("planned_start_s", "planned_end_s", *_TIMES):
            value = obj[key]
            if (value is not None or key not in _TIMES) and not _is_number(value):
                raise ValueError(
                    f"fault {obj['name']}: {key} is a number{' or null' if key in _TIMES else ''}"
                )
        if not (isinstance(obj["lanes"], list) and all(isinstance(lane, str) for lane in obj["lanes"])):
            raise ValueError(f"fault {obj['name']}: lanes is a list of lane names")
        if not all(obj[key] is None or isinstance(obj[key], str) for key in ("error", "removal_error")):
            raise ValueError(f"fault {obj['name']}: error and removal_error are strings or null")
        attributes = obj["attributes"]
        if not (isinstance(attributes, dict) and all(_is_number(v) for v in attributes.values())):
            raise ValueError(f"fault {obj['name']}: attributes maps names to numbers")
        record = cls(
            name=obj["name"], dependency=obj["dependency"], lanes=tuple(obj["lanes"]), type=obj["type"],
            attributes={str(k): float(v) for k, v in attributes.items()},
            planned_start_s=float(obj["planned_start_s"]), planned_end_s=float(obj["planned_end_s"]),
            requested_at=obj["requested_at"], started_at=obj["started_at"], error=obj["error"],
            removal_requested_at=obj["removal_requested_at"], ended_at=obj["ended_at"],
            removal_error=obj["removal_error"],
        )  # fmt: skip
        if (obj["applied"], obj["removed"]) != (record.applied, record.removed):
            raise ValueError(f"fault {obj['name']}: applied and removed contradict started_at and ended_at")
        return record


_TIMES = ("requested_at", "started_at", "removal_requested_at", "ended_at")
_RECORD_FIELDS = (
    "name", "dependency", "lanes", "type", "attributes", "planned_start_s", "planned_end_s",
    *_TIMES, "applied", "removed", "error", "removal_error",
)  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, kw_only=True)
class ChaosRecord:
    """``chaos.json``: the timeline's start (None until it started) and each step as it went."""

    t0: float | None
    faults: tuple[FaultRecord, ...]

    def as_json(self) -> dict[str, Any]:
        return {"t0": self.t0, "faults": [f.as_json() for f in self.faults]}

    @classmethod
    def from_json(cls, obj: Any) -> ChaosRecord:
        if not isinstance(obj, dict) or set(obj) != {"t0", "faults"} or not isinstance(obj["faults"], list):
            raise ValueError("expected a JSON object with t0 and a list of faults")
        if obj["t0"] is not None and not _is_number(obj["t0"]):
            raise ValueError(f"t0 is the timeline's start in epoch seconds, not {obj['t0']!r}")
        return cls(t0=obj["t0"], faults=tuple(FaultRecord.from_json(f) for f in obj["faults"]))


def read_chaos_record(path: Path) -> ChaosRecord:
    """``chaos.json``, or ConfigError naming the file and what is wrong in it."""
    data = read_json(path)
    try:
        return ChaosRecord.from_json(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a chaos record: {exc}") from None


@dataclass
class ChaosTimeline:
    chaos: Chaos
    steps: tuple[ChaosStep, ...]
    record_path: Path | None = None
    clock: Callable[[], float] = time.time
    lease: FaultLease | None = None
    records: dict[str, FaultRecord] = field(default_factory=dict)
    t0: float | None = None
    _active: set[str] = field(default_factory=set)

    def plan(self) -> list[tuple[float, str, ChaosStep]]:
        """(offset, "apply"|"remove", step), in time order; removals first at equal times."""
        events = [(s.at, "apply", s) for s in self.steps] + [(s.end, "remove", s) for s in self.steps]
        return sorted(events, key=lambda e: (e[0], e[1] == "apply"))

    def run(
        self, sleep: Callable[[float], None], stopped: Callable[[], bool], t0: float | None = None
    ) -> None:
        """Walk the plan; ``sleep`` is time.sleep or gevent.sleep.  Always cleans up.

        Offsets count from ``t0``: now, or the instant the arrival schedule starts (given,
        so faults and arrivals share one origin)."""
        self.t0 = self.clock() if t0 is None else t0
        for step in self.steps:
            self.records[step.name] = FaultRecord(
                name=step.name, dependency=step.dependency, type=step.type,
                lanes=self.chaos.topology.lanes_with(step.dependency, step.lane_tuple),
                attributes=dict(step.attributes), planned_start_s=step.at, planned_end_s=step.end,
            )  # fmt: skip
        self._save()
        try:
            for offset, action, step in self.plan():
                while not stopped():
                    remaining = self.t0 + offset - self.clock()
                    if remaining <= 0:
                        break
                    sleep(min(remaining, 0.25))
                if stopped():
                    return
                if action == "apply":
                    self.apply(step)
                else:
                    self.remove(step)
        finally:
            self.stop()

    @staticmethod
    def _lease_name(step: ChaosStep) -> str:
        if step.type == "down":
            return "down"
        fault = step.fault()
        return fault.type if fault.is_http else fault.toxic_name

    def apply(self, step: ChaosStep) -> None:
        record = self.records[step.name]
        if self.lease is not None:
            self.lease.hold(step.lane_tuple, step.dependency, self._lease_name(step))
        record.requested_at = self.clock()
        try:
            self._put(step, in_force=True)
            record.started_at = self.clock()
            self._active.add(step.name)
            log.info("chaos: %s applied (%s %s)", step.name, step.dependency, step.type)
        except DoorbusterError as exc:
            record.error = str(exc)
            log.error("chaos: %s could not be applied: %s", step.name, exc)
            # A fault on two lanes may have reached one of them: take back what did.
            try:
                self._put(step, in_force=False)
            except DoorbusterError as again:
                record.error += f"; taking it back failed too: {again}"
        self._save()

    def _put(self, step: ChaosStep, *, in_force: bool) -> None:
        """Apply the step's fault, or remove it."""
        if step.type == "down":
            self.chaos.set_enabled(step.dependency, step.lane_tuple, enabled=not in_force)
        elif in_force:
            self.chaos.add(step.fault())
        else:
            self.chaos.remove(step.dependency, step.lane_tuple, self._lease_name(step))

    def remove(self, step: ChaosStep) -> None:
        if step.name not in self._active:
            return
        record = self.records[step.name]
        record.removal_requested_at = self.clock()
        try:
            self._put(step, in_force=False)
            record.ended_at = self.clock()
            log.info("chaos: %s removed", step.name)
        except DoorbusterError as exc:
            # Left for the run's final reset; its verdicts can not say when it ended.
            record.removal_error = str(exc)
            log.error("chaos: %s could not be removed: %s", step.name, exc)
        self._active.discard(step.name)
        if self.lease is not None and record.removal_error is None:
            self.lease.release(step.lane_tuple, step.dependency, self._lease_name(step))
        self._save()

    def stop(self) -> None:
        """Remove every fault this timeline applied and has not removed yet."""
        by_name = {s.name: s for s in self.steps}
        for name in list(self._active):
            self.remove(by_name[name])
        if self.lease is not None and not self._active:
            self.lease.close()

    def _save(self) -> None:
        if self.record_path is None:
            return
        data = ChaosRecord(t0=self.t0, faults=tuple(self.records.values())).as_json()
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.record_path)
