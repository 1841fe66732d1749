"""The Chaos Toolkit extension run by the real ``chaos`` CLI against a real stack (time scale
0.2): the example experiment, a bad argument, and a fault that outlives the experiment that
added it only for its duration.

The stack is conftest's RabbitMQ ``broker_stack``: ``doorbuster up --time-scale 0.2`` starts
the same configuration, on other ports; test_brokers_in_lane and test_safety start their own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaosdoorbuster.actions import IMPORT_ROOTS, add_fault
from chaosdoorbuster.holder import OWNER
from harness.binaries import PROJECT_ROOT
from harness.faults.chaos import Chaos
from harness.processes import pid_alive
from tests.integration.conftest import BROKER_STACK_PORTS, RunningStack

# The default broker: the stack `doorbuster up --time-scale 0.2` would start.
pytestmark = pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
EXPERIMENT = PROJECT_ROOT / "examples" / "chaostoolkit" / "experiment.json"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ChaosStack:
    state_dir: Path
    env: dict[str, str]
    chaos: Chaos

    def doorbuster(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "doorbuster"), *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def chaos_run(
        self, experiment: Path, workdir: Path
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        journal = workdir / "journal.json"
        done = subprocess.run(
            [str(BIN / "chaos"), "--log-file", str(workdir / "chaostoolkit.log"), "run",
             "--journal-path", str(journal), str(experiment)],
            env=self.env, cwd=workdir, capture_output=True, text=True, timeout=150,
        )  # fmt: skip
        assert journal.exists(), f"chaos wrote no journal: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        return done, json.loads(journal.read_text())

    def toxic_list(self) -> list[dict[str, Any]]:
        done = self.doorbuster("toxic", "list", "--json")
        assert done.returncode == 0, done.stderr
        listed: list[dict[str, Any]] = json.loads(done.stdout)
        return listed

    def toxics(self) -> list[str]:
        """Every toxic Toxiproxy has, asked directly."""
        return [
            f"{name}/{t['name']}" for name, p in self.chaos.proxies().items() for t in p.get("toxics") or []
        ]

    def chaostoolkit_leases(self) -> list[Path]:
        return [p for p in (self.state_dir / "leases").glob("*.json") if OWNER in p.read_text()]


@pytest.fixture
def stack(broker_stack: RunningStack) -> ChaosStack:
    env = {
        **os.environ,
        "DOORBUSTER_STATE_DIR": str(broker_stack.state_dir),
        "PYTHONPATH": os.pathsep.join(map(str, IMPORT_ROOTS)),  # this checkout's extension and doorbuster
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the process probe's `doorbuster`
    }
    return ChaosStack(state_dir=broker_stack.state_dir, env=env, chaos=broker_stack.chaos)


def _activity(journal: dict[str, Any], section: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [run for run in section if run["activity"]["name"] == name]
    assert found, f"{name} not in the journal: {[r['activity']['name'] for r in section]}"
    return found[0]


def test_the_example_experiment(stack: ChaosStack, tmp_path: Path) -> None:
    done, journal = stack.chaos_run(EXPERIMENT, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert journal["status"] == "completed", journal["status"]
    assert not journal["deviated"]
    # The steady state, met before and after, measured on real orders and in Prometheus.
    for when in ("before", "after"):
        state = journal["steady_states"][when]
        assert state["steady_state_met"] is True, (when, state)
        orders = _activity(journal, state["probes"], "async-lane-takes-orders")["output"]
        assert orders["sent"] == 20 and orders["ok"] >= 19, orders
        figures = _activity(journal, state["probes"], "async-lane-p99-in-prometheus")["output"]
        assert figures["throughput_rps"] > 0 and figures["p99_s"] is not None, figures
    # The fault was applied by doorbuster's code under a lease naming Chaos Toolkit: the
    # extension's probe and doorbuster's own `toxic list` saw it, and it bit the sync lane.
    added = _activity(journal, journal["run"], "slow-down-inventory")
    assert added["status"] == "succeeded", added
    assert sorted(f["lane"] for f in added["output"]["applied"]) == ["async", "sync"]
    seen = _activity(journal, journal["run"], "faults-in-force")["output"]
    assert seen["by_chaostoolkit"] == 2 and seen["foreign"] == 0, seen
    listed = json.loads(_activity(journal, journal["run"], "doorbuster-toxic-list")["output"]["stdout"])
    assert {(f["lane"], f["dependency"], f["type"], f["owner"], f["foreign"]) for f in listed} == {
        (lane, "inventory", "latency", OWNER, False) for lane in ("sync", "async")
    }
    sync = _activity(journal, journal["run"], "sync-lane-under-the-fault")["output"]
    assert sync["ok"] < sync["sent"] or sync["p50_s"] >= 2.0, sync
    # The rollback removed both; nothing is left behind, in Toxiproxy, in the leases or running.
    rollback = _activity(journal, journal["rollbacks"], "remove-the-fault")
    assert rollback["status"] == "succeeded", rollback
    assert len(rollback["output"]["removed"]) == 2, rollback["output"]
    assert rollback["output"]["holders"] == [added["output"]["holder_pid"]]
    assert stack.toxic_list() == []
    assert stack.toxics() == []
    assert stack.chaostoolkit_leases() == []
    assert not pid_alive(added["output"]["holder_pid"])


def test_a_bad_argument_fails_the_activity_with_a_clear_message(stack: ChaosStack, tmp_path: Path) -> None:
    experiment = json.loads(EXPERIMENT.read_text())
    action = experiment["method"][0]
    assert action["name"] == "slow-down-inventory"
    action["provider"]["arguments"]["attributes"] = {"latncy": 2000}
    experiment["method"] = [action]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(experiment))
    _done, journal = stack.chaos_run(path, tmp_path)
    added = _activity(journal, journal["run"], "slow-down-inventory")
    assert added["status"] == "failed"
    # chaoslib keeps the traceback in the journal, wrapping what the activity raised: its last
    # line is our message, and none of it comes from inside doorbuster's fault code.
    last = added["exception"][-1].strip()
    assert last == (
        "chaoslib.exceptions.ActivityFailed: chaoslib.exceptions.InvalidActivity: add_fault: "
        "latency: unknown attribute(s) latncy; latency takes latency, jitter"
    ), added["exception"]
    assert not [line for line in added["exception"] if "/model/" in line or "/harness/" in line]
    assert stack.toxics() == []
    assert stack.chaostoolkit_leases() == []


def test_a_fault_ends_with_its_duration_when_the_experiment_dies(stack: ChaosStack, tmp_path: Path) -> None:
    experiment = json.loads(EXPERIMENT.read_text())
    action = experiment["method"][0]
    action["provider"]["arguments"]["duration"] = "6s"
    action["pauses"] = {"after": 60}  # the experiment is killed while it waits here
    experiment.update({"steady-state-hypothesis": {"title": "none", "probes": []}, "method": [action]})
    path = tmp_path / "dies.json"
    path.write_text(json.dumps(experiment))
    proc = subprocess.Popen(
        [str(BIN / "chaos"), "run", str(path)], env=stack.env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(stack.toxics()) < 2:
            time.sleep(0.2)
        applied_at = time.monotonic()
        assert len(stack.toxics()) == 2, "the fault was never applied"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    listed = stack.toxic_list()
    assert {(f["lane"], f["owner"]) for f in listed} == {("sync", OWNER), ("async", OWNER)}
    # The experiment is gone; the holder removes the fault once its 6 s are over.
    while time.monotonic() < applied_at + 20 and stack.toxics():
        time.sleep(0.2)
    assert stack.toxics() == []
    assert time.monotonic() - applied_at >= 5.0, "removed before its duration was over"
    assert stack.chaostoolkit_leases() == []
    assert stack.toxic_list() == []


TINY_RUN = """
name: chaostoolkit-tiny
stack:
  time_scale: 0.2
load:
  stages:
    - {name: steady, duration: 6s, rate: 5}
  poll: {initial: 0.2s, max: 1s, give_up: 20s}
expectations:
  - "async.checkout.p50 < 0.5s"
  - "async.checkout.p50 < 1ms"
drain_timeout: 20s
"""


def test_a_runs_verdicts_as_a_steady_state(
    stack: ChaosStack, broker_stack: RunningStack, tmp_path: Path
) -> None:
    scenario, run_dir = tmp_path / "tiny.yaml", tmp_path / "run"
    scenario.write_text(TINY_RUN)
    supervisor = broker_stack.stack.supervisor_pid()
    ran = stack.doorbuster("run", str(scenario), "--base-port", str(BROKER_STACK_PORTS.base),
                           "--toxiproxy-port", str(BROKER_STACK_PORTS.toxiproxy_api),
                           "--out", str(run_dir))  # fmt: skip
    assert ran.returncode == 1, ran.stdout + ran.stderr  # the second expectation fails, on purpose
    # The run's settings are the running stack's: it ran there, it did not restart it.
    assert supervisor is not None and broker_stack.stack.supervisor_pid() == supervisor, ran.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    verdicts = {
        "type": "python", "module": "chaosdoorbuster.probes", "func": "run_verdicts",
        "arguments": {"run_dir": str(run_dir)},
    }  # fmt: skip
    experiment = {
        "title": "a run's verdicts",
        "description": "the first expectation passed, the run as a whole did not",
        "steady-state-hypothesis": {
            "title": "the run failed, as its second expectation means it to",
            "probes": [
                {"type": "probe", "name": "the-run-failed", "tolerance": "fail",
                 "provider": {**verdicts, "func": "run_outcome"}},
            ],
        },
        "method": [{"type": "probe", "name": "verdicts", "provider": verdicts}],
    }  # fmt: skip
    path = tmp_path / "verdicts.json"
    path.write_text(json.dumps(experiment))
    done, journal = stack.chaos_run(path, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    read = _activity(journal, journal["run"], "verdicts")["output"]
    assert read["outcome"] == "fail"
    assert [(v["expectation"], v["outcome"]) for v in read["verdicts"]] == [
        ("async.checkout.p50 < 0.5s", "pass"), ("async.checkout.p50 < 1ms", "fail"),
    ]  # fmt: skip
    assert [v["observed"] for v in read["verdicts"]] == [v["observed"] for v in summary["verdicts"]]
    lane = summary["lanes"]["async"]
    assert read["lanes"]["async"] == {
        "requests": lane["requests"], "error_rate": lane["error_rate"], "throughput_rps": lane["throughput_rps"],
        "p50_ms": lane["latency_ms"]["p50"], "p95_ms": lane["latency_ms"]["p95"], "p99_ms": lane["latency_ms"]["p99"],
    }  # fmt: skip
    assert read["lanes"]["async"]["requests"] > 0
    assert journal["steady_states"]["before"]["steady_state_met"] is True


def test_a_killed_holders_fault_is_removed_by_the_next_command(stack: ChaosStack) -> None:
    added = add_fault(
        "email", "latency", "60s", lanes="async", attributes={"latency": 500},
        configuration={"doorbuster_state_dir": str(stack.state_dir)},
    )  # fmt: skip
    assert [(f["lane"], f["dependency"]) for f in added["applied"]] == [("async", "email")]
    assert len(stack.toxics()) == 1
    os.kill(added["holder_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pid_alive(added["holder_pid"]):
        time.sleep(0.05)
    assert len(stack.toxics()) == 1  # nobody removed it yet
    listed = stack.doorbuster("toxic", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "removed a leftover fault: async-email doorbuster_latency_downstream" in listed.stderr
    assert OWNER in listed.stderr
    assert json.loads(listed.stdout) == []
    assert stack.toxics() == [] and stack.chaostoolkit_leases() == []
