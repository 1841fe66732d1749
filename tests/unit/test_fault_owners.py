"""Who applied each active fault (harness.faults.leases.fault_owners), and what a run does about faults
doorbuster did not apply (harness.run.runner.clear_faults): refuse, or remove them when told to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.faults.actions import add_held, reset_faults, set_proxy
from harness.faults.chaos import ActiveFault, Chaos
from harness.faults.hold import FaultHold
from harness.faults.leases import (
    FaultLease,
    fault_owners,
    forget_removed_faults,
    remove_orphan_faults,
    stack_lease,
    sweep_leftovers,
)
from harness.run.runner import clear_faults
from model.errors import ConfigError, ForeignFaults, StackNotRunning, ToxiproxyUnavailable
from model.faults import FaultSpec
from model.settings import StackSettings
from model.topology import Topology
from tests.unit.progress_recorder import ProgressRecorder


class FakeChaos(Chaos):
    """Toxiproxy and the services' fault APIs as a list in memory; passed in as an argument."""

    def __init__(self, *faults: ActiveFault, refuse_add: bool = False) -> None:
        super().__init__(Topology.from_settings(StackSettings()))
        self.faults = list(faults)
        self.refuse_add = refuse_add
        self.resets = 0

    def active(self) -> list[ActiveFault]:
        return list(self.faults)

    def add(self, spec: FaultSpec) -> list[ActiveFault]:
        if self.refuse_add:
            raise ToxiproxyUnavailable(f"toxic {spec.toxic_name} already exists")
        added = [_toxic(lane, spec.dependency, spec.toxic_name) for lane in spec.lanes]
        self.faults += added
        return added

    def remove(self, dependency: str, lanes: tuple[str, ...], name: str | None = None) -> int:
        gone = [
            f
            for f in self.faults
            if f.dependency == dependency and f.lane in lanes and (name is None or name in (f.name, f.type))
        ]
        self.faults = [f for f in self.faults if f not in gone]
        return len(gone)

    def set_enabled(self, dependency: str, lanes: tuple[str, ...], *, enabled: bool) -> None:
        if enabled:
            self.remove(dependency, lanes, "down")

    def reset(self) -> None:
        self.resets += 1
        self.faults = []


def _toxic(lane: str, dependency: str, name: str) -> ActiveFault:
    return ActiveFault(
        lane=lane, dependency=dependency, kind="toxic", type="latency", name=name, attributes={"latency": 900}
    )


def _down(lane: str, dependency: str) -> ActiveFault:
    return ActiveFault(
        lane=lane, dependency=dependency, kind="proxy_disabled", type="down", name="down", attributes={}
    )


def _gone_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_each_fault_is_doorbuster_s_left_over_or_foreign(tmp_path: Path) -> None:
    ours = _toxic("sync", "payment", "doorbuster_latency_downstream")
    left = _toxic("async", "email", "doorbuster_latency_downstream")
    cut = _down("sync", "warehouse")
    foreign = _toxic("sync", "email", "latency_downstream")  # toxiproxy-cli's default name
    FaultLease(tmp_path, owner="locust run of short").hold(("sync",), "payment", ours.name)
    FaultLease(tmp_path, owner="doorbuster run", pid=_gone_pid()).hold(("async",), "email", left.name)
    # A stand-in supervisor: this test's own process, alive as long as the test.
    FaultLease.of_stack(tmp_path, os.getpid()).hold(
        ("sync",), "warehouse", "down", by="doorbuster proxy disable"
    )

    owned = fault_owners(tmp_path, [ours, left, cut, foreign])

    assert [(o.origin, o.owner, o.foreign) for o in owned] == [
        ("doorbuster", "locust run of short", False),
        ("leftover", "doorbuster run", False),
        ("doorbuster", "doorbuster proxy disable", False),
        ("foreign", None, True),
    ]
    assert owned[3].applied_by == "outside doorbuster"
    data = owned[3].as_json()
    assert data["foreign"] is True and data["owner"] is None and data["name"] == "latency_downstream"
    assert owned[0].as_json()["owner_pid"] == os.getpid()


def test_a_fault_held_by_a_live_owner_and_a_gone_one_is_not_left_over(tmp_path: Path) -> None:
    fault = _toxic("sync", "payment", "doorbuster_latency_downstream")
    FaultLease(tmp_path, owner="a run that died", pid=_gone_pid()).hold(("sync",), "payment", fault.name)
    FaultLease(tmp_path, owner="doorbuster toxic add --for").hold(("sync",), "payment", fault.name)
    chaos = FakeChaos(fault)
    assert [o.origin for o in fault_owners(tmp_path, chaos.active())] == ["doorbuster"]
    assert sweep_leftovers(tmp_path, chaos) == [] and chaos.faults == [fault]


def test_the_stack_s_lease_is_shared_by_commands_and_forgets_what_was_removed(tmp_path: Path) -> None:
    """Faults added for good by two commands (two processes, one lease), one removed since."""
    FaultLease.of_stack(tmp_path, os.getpid()).hold(
        ("sync", "async"), "email", "slow", by="doorbuster toxic add"
    )
    FaultLease.of_stack(tmp_path, os.getpid()).hold(
        ("sync",), "payment", "down", by="doorbuster proxy disable"
    )
    assert FaultLease.of_stack(tmp_path, os.getpid()).faults == (
        "sync/email/slow",
        "async/email/slow",
        "sync/payment/down",
    )
    still = [_toxic("async", "email", "slow"), _down("sync", "payment")]
    forget_removed_faults(tmp_path, FakeChaos(*still))
    assert FaultLease.of_stack(tmp_path, os.getpid()).faults == ("async/email/slow", "sync/payment/down")
    # Someone else's toxic by the forgotten name is not taken for doorbuster's.
    again = _toxic("sync", "email", "slow")
    assert fault_owners(tmp_path, [again])[0].foreign


def test_a_stack_lease_of_a_stopped_stack_is_not_added_to(tmp_path: Path) -> None:
    FaultLease.of_stack(tmp_path, _gone_pid()).hold(("sync",), "email", "old")
    FaultLease.of_stack(tmp_path, os.getpid()).hold(("sync",), "email", "new")
    assert FaultLease.of_stack(tmp_path, os.getpid()).faults == ("sync/email/new",)


def test_a_run_refuses_foreign_faults_names_them_and_removes_nothing(tmp_path: Path) -> None:
    foreign = _toxic("sync", "email", "latency_downstream")
    left = _toxic("async", "payment", "doorbuster_latency_downstream")
    FaultLease(tmp_path, owner="doorbuster run", pid=_gone_pid()).hold(("async",), "payment", left.name)
    chaos, progress = FakeChaos(foreign, left), ProgressRecorder()
    with pytest.raises(ForeignFaults) as refused:
        clear_faults(tmp_path, chaos, progress, reset_faults=False)
    message = str(refused.value)
    assert "1 fault(s) applied outside doorbuster: sync-email latency toxic 'latency_downstream'" in message
    assert "--reset-faults" in message and "baseline would not be one" in message
    assert refused.value.exit_code == 3
    # The left-over one is removed as before; the foreign one stays, as it was found.
    assert chaos.faults == [foreign] and chaos.resets == 0
    assert len(progress.notes) == 1
    assert progress.notes[0].startswith(
        f"removed a leftover fault: async-payment {left.name} (left by doorbuster run"
    )


def test_with_reset_faults_a_run_removes_foreign_faults_and_names_each(tmp_path: Path) -> None:
    foreign = [_toxic("sync", "email", "latency_downstream"), _down("async", "warehouse")]
    chaos, progress = FakeChaos(*foreign), ProgressRecorder()
    clear_faults(tmp_path, chaos, progress, reset_faults=True)
    assert chaos.faults == [] and chaos.resets == 1
    assert progress.notes == [
        "removing a fault applied outside doorbuster (--reset-faults): "
        "sync-email latency toxic 'latency_downstream' {\"latency\": 900}",
        "removing a fault applied outside doorbuster (--reset-faults): async-warehouse proxy disabled",
    ]


def test_doorbuster_s_own_faults_are_removed_at_a_run_s_start_with_no_refusal(tmp_path: Path) -> None:
    added = _toxic("sync", "email", "doorbuster_latency_downstream")
    FaultLease.of_stack(tmp_path, os.getpid()).hold(("sync",), "email", added.name, by="doorbuster toxic add")
    chaos, progress = FakeChaos(added), ProgressRecorder()
    clear_faults(tmp_path, chaos, progress, reset_faults=False)
    assert chaos.faults == [] and chaos.resets == 1
    assert progress.notes == [
        "removing 1 fault(s) left in force: sync-email latency toxic 'doorbuster_latency_downstream' "
        '{"latency": 900} (applied by doorbuster toxic add)'
    ]
    assert FaultLease.of_stack(tmp_path, os.getpid()).faults == ()  # and the lease forgot it


def test_toxic_add_that_is_refused_does_not_claim_the_fault_already_there(tmp_path: Path) -> None:
    """toxiproxy-cli added a toxic by the name doorbuster would use; doorbuster's add fails."""
    spec = FaultSpec(dependency="email", type="latency", lanes=("sync",), attributes={"latency": 900})
    there = _toxic("sync", "email", spec.toxic_name)
    chaos, lease = FakeChaos(there, refuse_add=True), FaultLease.of_stack(tmp_path, os.getpid())
    with pytest.raises(ToxiproxyUnavailable):
        add_held(chaos, spec, lease, by="doorbuster toxic add")
    assert lease.faults == ()
    assert fault_owners(tmp_path, chaos.active())[0].foreign


def test_toxic_add_holds_what_it_applied(tmp_path: Path) -> None:
    spec = FaultSpec(dependency="email", type="latency", attributes={"latency": 900})
    chaos, lease = FakeChaos(), FaultLease.of_stack(tmp_path, os.getpid())
    add_held(chaos, spec, lease, by="doorbuster toxic add")
    owned = fault_owners(tmp_path, chaos.active())
    assert [(o.fault.lane, o.origin, o.owner) for o in owned] == [
        ("sync", "doorbuster", "doorbuster toxic add"),
        ("async", "doorbuster", "doorbuster toxic add"),
    ]


# -- what the CLI's commands call: harness.faults.{leases,actions,hold} --------------------------
class ProxyChaos(FakeChaos):
    """FakeChaos whose proxies go down too (a disabled proxy is a fault named "down")."""

    def set_enabled(self, dependency: str, lanes: tuple[str, ...], *, enabled: bool) -> None:
        super().set_enabled(dependency, lanes, enabled=enabled)
        if not enabled:
            self.faults += [_down(lane, dependency) for lane in lanes]


def test_orphan_faults_are_removed_and_removed_ones_forgotten(tmp_path: Path) -> None:
    left = _toxic("async", "email", "doorbuster_latency_downstream")
    FaultLease(tmp_path, owner="doorbuster run", pid=_gone_pid()).hold(("async",), "email", left.name)
    FaultLease.of_stack(tmp_path, os.getpid()).hold(("sync",), "payment", "gone", by="doorbuster toxic add")
    chaos = FakeChaos(left)
    leftovers = remove_orphan_faults(tmp_path, chaos)
    assert [(lo.lane, lo.dependency, lo.name, lo.removed) for lo in leftovers] == [
        ("async", "email", left.name, True)
    ]
    assert chaos.faults == []
    # The stack's lease no longer claims what was reset behind doorbuster's back.
    assert FaultLease.of_stack(tmp_path, os.getpid()).faults == ()


def test_the_stack_lease_needs_a_running_supervisor(tmp_path: Path) -> None:
    assert stack_lease(tmp_path, os.getpid()).path == FaultLease.of_stack(tmp_path, os.getpid()).path
    with pytest.raises(StackNotRunning, match="the stack stopped meanwhile; run: doorbuster up"):
        stack_lease(tmp_path, None)


def test_a_proxy_taken_down_is_the_stack_s_until_brought_back(tmp_path: Path) -> None:
    chaos = ProxyChaos()
    set_proxy(tmp_path, chaos, "payment", ("sync",), enabled=False, supervisor_pid=os.getpid())
    owned = fault_owners(tmp_path, chaos.active())
    assert [(o.fault.lane, o.fault.type, o.applied_by) for o in owned] == [
        ("sync", "down", "doorbuster proxy disable")
    ]
    set_proxy(tmp_path, chaos, "payment", ("sync",), enabled=True, supervisor_pid=None)
    assert chaos.faults == [] and FaultLease.of_stack(tmp_path, os.getpid()).faults == ()


def test_a_proxy_is_not_taken_down_without_a_stack_or_on_a_lane_without_it(tmp_path: Path) -> None:
    chaos = ProxyChaos()
    with pytest.raises(StackNotRunning):
        set_proxy(tmp_path, chaos, "payment", ("sync",), enabled=False, supervisor_pid=None)
    with pytest.raises(ConfigError, match="nowhere"):
        set_proxy(tmp_path, chaos, "nowhere", ("sync",), enabled=False, supervisor_pid=1)
    assert chaos.faults == []


def test_a_reset_removes_every_fault_and_the_lease_forgets_them(tmp_path: Path) -> None:
    added = _toxic("sync", "email", "slow")
    FaultLease.of_stack(tmp_path, os.getpid()).hold(("sync",), "email", "slow", by="doorbuster toxic add")
    chaos = FakeChaos(added)
    reset_faults(tmp_path, chaos)
    assert chaos.resets == 1 and chaos.faults == []
    assert FaultLease.of_stack(tmp_path, os.getpid()).faults == ()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_held_fault_is_waited_out_in_short_steps_then_removed_and_its_lease_closed(tmp_path: Path) -> None:
    spec = FaultSpec(dependency="email", type="latency", lanes=("sync",), attributes={"latency": 900})
    chaos, clock = FakeChaos(), FakeClock()
    lease = FaultLease(tmp_path, owner="doorbuster toxic add --for")
    hold = FaultHold(chaos, spec, lease, clock=clock, sleep=clock.sleep)
    applied = hold.apply()
    assert [(f.lane, f.name) for f in applied] == [("sync", spec.toxic_name)]
    assert fault_owners(tmp_path, chaos.active())[0].owner == "doorbuster toxic add --for"
    hold.wait(2.5)
    assert clock.sleeps == [1.0, 1.0, 0.5]
    assert hold.release() == 1
    assert chaos.faults == [] and lease.faults == ()


def test_a_held_fault_interrupted_is_still_removed_by_release(tmp_path: Path) -> None:
    spec = FaultSpec(dependency="email", type="latency", lanes=("sync",), attributes={"latency": 900})
    chaos, clock = FakeChaos(), FakeClock()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    hold = FaultHold(chaos, spec, FaultLease(tmp_path, owner="test"), clock=clock, sleep=interrupted)
    hold.apply()
    with pytest.raises(KeyboardInterrupt):
        try:
            hold.wait(30)
        finally:
            assert hold.release() == 1
    assert chaos.faults == []


def test_a_held_fault_that_is_refused_is_not_claimed(tmp_path: Path) -> None:
    spec = FaultSpec(dependency="email", type="latency", lanes=("sync",), attributes={"latency": 900})
    lease = FaultLease(tmp_path, owner="test")
    with pytest.raises(ToxiproxyUnavailable):
        FaultHold(FakeChaos(refuse_add=True), spec, lease).apply()
    assert lease.faults == ()
