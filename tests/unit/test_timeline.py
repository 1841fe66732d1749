from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from harness.analysis.inputs import Row, RunInputs
from harness.analysis.recorded import fault_windows as _faults
from harness.analysis.summary import analyse
from harness.faults.timeline import ChaosTimeline, read_chaos_record
from model.errors import ConfigError, ToxiproxyUnavailable
from model.faults import FaultSpec
from model.scenario import ChaosStep, Scenario
from model.settings import StackSettings
from model.topology import Topology
from tests.unit.scenarios import made_up_scenario


class FakeChaos:
    """Records what the timeline asked for; passed in as an argument."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.topology = Topology.from_settings(StackSettings())

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


class SlowFlakyChaos(FakeChaos):
    """Takes 0.3 s to answer each call; refuses the faults or removals it is told to."""

    def __init__(self, clock: Clock, *, refuse_add: str = "", refuse_remove: str = "") -> None:
        super().__init__()
        self.clock, self.refuse_add, self.refuse_remove = clock, refuse_add, refuse_remove

    def add(self, spec: FaultSpec) -> None:
        self.clock.now += 0.3
        if spec.toxic_name == self.refuse_add:
            raise ToxiproxyUnavailable("Toxiproxy did not answer (adding latency): ConnectTimeout")
        super().add(spec)

    def remove(self, dependency: str, lanes: tuple[str, ...], name: str | None = None) -> int:
        self.clock.now += 0.3
        if name == self.refuse_remove:
            raise ToxiproxyUnavailable("Toxiproxy did not answer (removing latency): ConnectTimeout")
        return super().remove(dependency, lanes, name)


def _record(tmp_path: Path, chaos: FakeChaos, clock: Clock) -> dict[str, dict[str, object]]:
    timeline = ChaosTimeline(chaos=chaos, steps=STEPS[:1], record_path=tmp_path / "chaos.json", clock=clock)  # type: ignore[arg-type]
    timeline.run(clock.sleep, lambda: False)
    record = json.loads((tmp_path / "chaos.json").read_text())
    return {f["name"]: {k: v - record["t0"] if k.endswith("_at") and v else v for k, v in f.items()}
            for f in record["faults"]}  # fmt: skip


def test_a_fault_is_in_force_from_its_acknowledged_apply_to_its_acknowledged_removal(tmp_path: Path) -> None:
    clock = Clock()
    slow = _record(tmp_path, SlowFlakyChaos(clock), clock)["slow"]
    assert slow["requested_at"] == 1 and slow["started_at"] == pytest.approx(1.3)
    assert slow["removal_requested_at"] == 4 and slow["ended_at"] == pytest.approx(4.3)
    assert slow["applied"] is True and slow["removed"] is True
    window = _faults(tmp_path, _scenario(), 1000.0)[0]
    assert window.start == pytest.approx(1.3) and window.end == pytest.approx(4.3)


def test_a_fault_that_failed_to_apply_is_recorded_taken_back_and_judged_undetermined(tmp_path: Path) -> None:
    clock = Clock()
    chaos = SlowFlakyChaos(clock, refuse_add="doorbuster_slow")
    slow = _record(tmp_path, chaos, clock)["slow"]
    assert slow["applied"] is False and slow["started_at"] is None
    assert "did not answer (adding latency)" in str(slow["error"])
    assert chaos.calls == [("remove", "doorbuster_slow")]  # whatever reached one lane is taken back
    window = _faults(tmp_path, _scenario(), 1000.0)[0]
    assert not window.applied and (window.start, window.end) == (1, 4)  # as planned
    summary = analyse(
        RunInputs(scenario=_scenario(), rows=tuple(_rows()), faults=(window,), load_end=30.0)
    ).to_json()
    assert summary["metastability"]["sync"]["outcome"] == "undetermined"
    assert summary["metastability"]["sync"]["reason"] == "fault slow was never applied"


def test_a_removal_that_failed_is_not_an_end(tmp_path: Path) -> None:
    clock = Clock()
    slow = _record(tmp_path, SlowFlakyChaos(clock, refuse_remove="doorbuster_slow"), clock)["slow"]
    assert slow["applied"] is True and slow["removed"] is False and slow["ended_at"] is None
    assert "removing latency" in str(slow["removal_error"])
    window = _faults(tmp_path, _scenario(), 1000.0)[0]
    assert window.applied and not window.removed
    summary = analyse(
        RunInputs(scenario=_scenario(), rows=tuple(_rows()), faults=(window,), load_end=30.0)
    ).to_json()
    assert "removal of fault slow was never acknowledged" in summary["metastability"]["sync"]["reason"]


def _scenario() -> Scenario:
    return made_up_scenario(
        baseline_s=1,
        rest_s=29,
        rate=4,
        chaos=[STEPS[0].model_dump(by_alias=True)],
        metastability={"window": 10},
    )


def _rows() -> list[Row]:
    return [Row(i / 4, i / 4 + 0.5, "sync", "checkout", 200, 0, f"s{i}") for i in range(120)]


def test_the_chaos_record_reads_back_as_written_and_a_contradiction_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    _record(tmp_path, SlowFlakyChaos(clock), clock)
    path = tmp_path / "chaos.json"
    record = read_chaos_record(path)
    assert record.as_json() == json.loads(path.read_text())
    data = record.as_json()
    data["faults"][0]["applied"] = False
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="applied and removed contradict started_at and ended_at"):
        read_chaos_record(path)
