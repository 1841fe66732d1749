from __future__ import annotations

import contextlib
import json
from pathlib import Path

from harness.chaos import FaultSpec
from harness.scenario import ChaosStep
from harness.timeline import ChaosTimeline


class FakeChaos:
    """Records what the timeline asked for; passed in as an argument."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def add(self, spec: FaultSpec) -> None:
        self.calls.append(("add", spec.toxic_name))

    def remove(self, dependency: str, lanes: tuple[str, ...], name: str | None = None) -> int:
        self.calls.append(("remove", str(name)))
        return 1

    def set_enabled(self, dependency: str, lanes: tuple[str, ...], *, enabled: bool) -> None:
        self.calls.append(("enable" if enabled else "disable", dependency))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


STEPS = (
    ChaosStep.model_validate({"name": "slow", "at": 1, "for": 3, "dependency": "email", "type": "latency", "attributes": {"latency": 5}}),
    ChaosStep.model_validate({"name": "gone", "at": 2, "for": 1, "dependency": "warehouse", "type": "down"}),
)  # fmt: skip


def test_faults_are_applied_and_removed_in_time_order(tmp_path: Path) -> None:
    chaos, clock = FakeChaos(), Clock()
    timeline = ChaosTimeline(chaos=chaos, steps=STEPS, record_path=tmp_path / "chaos.json", clock=clock)  # type: ignore[arg-type]
    timeline.run(clock.sleep, lambda: False)
    assert chaos.calls == [
        ("add", "doorbuster_slow"),
        ("disable", "warehouse"),
        ("enable", "warehouse"),
        ("remove", "doorbuster_slow"),
    ]
    record = json.loads((tmp_path / "chaos.json").read_text())
    slow = next(f for f in record["faults"] if f["name"] == "slow")
    assert slow["started_at"] - record["t0"] == 1
    assert slow["ended_at"] - record["t0"] == 4


def test_offsets_count_from_the_t0_given(tmp_path: Path) -> None:
    chaos, clock = FakeChaos(), Clock()
    timeline = ChaosTimeline(chaos=chaos, steps=STEPS, record_path=tmp_path / "chaos.json", clock=clock)  # type: ignore[arg-type]
    timeline.run(clock.sleep, lambda: False, t0=1000.5)  # the arrivals start half a second from now
    record = json.loads((tmp_path / "chaos.json").read_text())
    slow = next(f for f in record["faults"] if f["name"] == "slow")
    assert record["t0"] == 1000.5
    assert slow["started_at"] == 1001.5
    assert slow["ended_at"] == 1004.5


def test_stopping_early_removes_what_was_applied() -> None:
    chaos, clock = FakeChaos(), Clock()
    timeline = ChaosTimeline(chaos=chaos, steps=STEPS, clock=clock)  # type: ignore[arg-type]
    timeline.run(clock.sleep, lambda: clock.now >= 1002.5)
    assert ("add", "doorbuster_slow") in chaos.calls and ("disable", "warehouse") in chaos.calls
    assert chaos.calls[-2:] in (
        [("remove", "doorbuster_slow"), ("enable", "warehouse")],
        [("enable", "warehouse"), ("remove", "doorbuster_slow")],
    )
    assert timeline._active == set()


def test_an_exception_mid_run_still_cleans_up() -> None:
    chaos, clock = FakeChaos(), Clock()
    timeline = ChaosTimeline(chaos=chaos, steps=STEPS, clock=clock)  # type: ignore[arg-type]

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now > 1001.5:
            raise KeyboardInterrupt

    with contextlib.suppress(KeyboardInterrupt):
        timeline.run(sleep, lambda: False)
    assert chaos.calls == [("add", "doorbuster_slow"), ("remove", "doorbuster_slow")]
