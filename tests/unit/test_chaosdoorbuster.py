"""The Chaos Toolkit extension's arguments, checked before any stack is looked at, and its
probes on what is passed in (a fake HTTP session, a made-up run directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from chaoslib.exceptions import ActivityFailed, InvalidActivity

from chaosdoorbuster import __version__, discover
from chaosdoorbuster.actions import IMPORT_ROOTS, add_fault, remove_faults
from chaosdoorbuster.arguments import (
    doorbuster_errors,
    duration_arg,
    fault_spec,
    lanes_arg,
    positive_int_arg,
    state_dir,
)
from chaosdoorbuster.holder import HeldFault
from chaosdoorbuster.probes import probe_lane, run_outcome, run_verdicts, send_orders
from harness.stack.state import default_state_dir
from model.errors import StackNotRunning
from model.settings import StackSettings
from model.topology import Topology

TOPOLOGY = Topology.from_settings(StackSettings())
ACTIVITIES = {
    ("action", "add_fault"), ("action", "remove_faults"), ("probe", "probe_lane"),
    ("probe", "lane_figures"), ("probe", "active_faults"), ("probe", "run_verdicts"), ("probe", "run_outcome"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"dependency": 7, "type": "latency"}, "dependency: expected a dependency's name"),
        ({"dependency": "payment", "type": ""}, "type: expected a fault type"),
        ({"dependency": "payment", "type": "latency", "attributes": [2000]}, "attributes: expected an object"),
        ({"dependency": "payment", "type": "latency", "attributes": {"latency": "2000"}},
         "attributes.latency: expected a number, got '2000'"),
        ({"dependency": "payment", "type": "latency", "attributes": {"latency": True}},
         "attributes.latency: expected a number"),
        ({"dependency": "payment", "type": "latency", "attributes": {"latency": float("nan")}},
         "attributes.latency: expected a finite number"),
        ({"dependency": "payment", "type": "latency", "lanes": "fast"}, "lane: expected one of sync, async"),
        ({"dependency": "payment", "type": "latency", "lanes": []}, "lanes: expected both, sync, async"),
        ({"dependency": "payment", "type": "latency", "toxicity": "all"}, "toxicity: expected a number"),
        ({"dependency": "payment", "type": "latency", "name": ""}, "name: expected a toxic name"),
    ],
)  # fmt: skip
def test_bad_fault_arguments_name_the_argument(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidActivity, match=r"^" + message.replace("(", r"\(")):
        fault_spec(**arguments)


def test_a_fault_the_stack_would_refuse_is_an_invalid_activity() -> None:
    spec = fault_spec(dependency="payment", type="latency", attributes={"latncy": 2000})
    unknown = pytest.raises(InvalidActivity, match=r"^add_fault: latency: unknown attribute\(s\) latncy")
    with unknown, doorbuster_errors("add_fault"):
        spec.validate(TOPOLOGY)
    nowhere = fault_spec(dependency="flux-capacitor", type="latency", attributes={"latency": 1})
    no_such = pytest.raises(
        InvalidActivity, match=r"^add_fault: lane 'sync' has no dependency 'flux-capacitor'"
    )
    with no_such, doorbuster_errors("add_fault"):
        nowhere.validate(TOPOLOGY)


def test_good_fault_arguments_make_doorbusters_spec() -> None:
    spec = fault_spec(
        dependency="inventory", type="latency", lanes=["async", "async"], attributes={"latency": 2000},
        toxicity=0.5,
    )  # fmt: skip
    assert spec.validate(TOPOLOGY) is spec
    assert (spec.lanes, spec.attributes, spec.toxicity, spec.toxic_name) == (
        ("async",), {"latency": 2000}, 0.5, "doorbuster_latency_downstream",
    )  # fmt: skip
    assert lanes_arg("both") == ("sync", "async")
    # What the holder is told survives its command line.
    held = HeldFault(state_dir=Path("/state"), spec=spec, duration_s=30.0)
    assert HeldFault.from_json(held.to_json()) == held


@pytest.mark.parametrize(
    ("value", "seconds"), [(30, 30.0), ("30s", 30.0), ("2m", 120.0), ("500ms", 0.5), ("1.5", 1.5)]
)
def test_durations(value: Any, seconds: float) -> None:
    assert duration_arg("duration", value, most_s=3600) == seconds


@pytest.mark.parametrize("value", ["soon", "0s", 0, "2h", True, -1, None])
def test_bad_durations_are_refused(value: Any) -> None:
    with pytest.raises(InvalidActivity, match=r"^duration: "):
        duration_arg("duration", value, most_s=3600)


@pytest.mark.parametrize("value", [0, 1001, 2.5, "20", True])
def test_bad_counts_are_refused(value: Any) -> None:
    with pytest.raises(InvalidActivity, match=r"^requests_count: expected a whole number from 1 to 1000"):
        positive_int_arg("requests_count", value, most=1000)


def test_the_state_dir_comes_from_the_configuration_else_as_the_cli_finds_it(tmp_path: Path) -> None:
    assert state_dir({"doorbuster_state_dir": str(tmp_path)}) == tmp_path
    assert state_dir({"doorbuster_state_dir": ""}) == default_state_dir()
    assert state_dir(None) == default_state_dir()
    with pytest.raises(InvalidActivity, match=r"^configuration doorbuster_state_dir: expected a directory"):
        state_dir({"doorbuster_state_dir": 5})


def test_arguments_are_checked_before_the_stack_is_looked_for(tmp_path: Path) -> None:
    nothing_here = {"doorbuster_state_dir": str(tmp_path)}
    with pytest.raises(InvalidActivity, match=r"^duration: "):
        add_fault("inventory", "latency", "forever", attributes={"latency": 1}, configuration=nothing_here)
    with pytest.raises(InvalidActivity, match=r"^lane: "):
        probe_lane("fast", configuration=nothing_here)
    with pytest.raises(InvalidActivity, match=r"^rate: "):
        probe_lane("async", rate=0, configuration=nothing_here)
    with pytest.raises(InvalidActivity, match=r"^remove_faults: name: "):
        remove_faults(name="", configuration=nothing_here)
    # Good arguments, no stack: doorbuster's own error, named, as a failed activity.
    with pytest.raises(ActivityFailed, match=r"^add_fault: StackNotRunning: no stack is running"):
        add_fault("inventory", "latency", "5s", attributes={"latency": 1}, configuration=nothing_here)
    with pytest.raises(ActivityFailed, match=r"^probe_lane: StackNotRunning: "):
        probe_lane("async", configuration=nothing_here)


def test_doorbuster_errors_become_failed_activities() -> None:
    gone = pytest.raises(ActivityFailed, match=r"^active_faults: StackNotRunning: gone$")
    with gone, doorbuster_errors("active_faults"):
        raise StackNotRunning("gone")


class _Answer:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class _FakeSession:
    """Answers from a script: a status code, or an exception to raise."""

    def __init__(self, script: list[int | Exception]) -> None:
        self.script = script
        self.posted: list[tuple[str, dict[str, Any], float]] = []

    def post(self, url: str, *, json: dict[str, Any], timeout: float) -> _Answer:
        self.posted.append((url, json, timeout))
        step = self.script[len(self.posted) - 1]
        if isinstance(step, Exception):
            raise step
        return _Answer(step)


def test_probe_lane_counts_every_answer() -> None:
    session = _FakeSession([202, 202, 503, requests.Timeout("slow"), requests.ConnectionError("refused")])
    figures = send_orders(TOPOLOGY, "async", count=5, rate=100.0, timeout_s=2.0, session=session)
    assert {k: figures[k] for k in ("lane", "sent", "ok", "error_rate", "statuses")} == {
        "lane": "async", "sent": 5, "ok": 2, "error_rate": 0.6,
        "statuses": {"202": 2, "503": 1, "timeout": 1, "connection error": 1},
    }  # fmt: skip
    assert figures["p50_s"] is not None and figures["p99_s"] >= figures["p50_s"]
    url, order, timeout = session.posted[0]
    assert url == f"{TOPOLOGY.order_service('async').url}/orders" and timeout == 2.0
    assert set(order) == {"customer_id", "items"}
    # Distinct customers: no order is taken for a retry of another.
    assert len({o["customer_id"] for _, o, _ in session.posted}) == 5


def _summary() -> dict[str, Any]:
    return {
        "scenario": "steady",
        "duration_s": 60.0,
        "lanes": {
            "async": {"requests": 600, "errors": 0, "error_rate": 0.0, "throughput_rps": 10.0,
                      "latency_ms": {"p50": 80.1, "p95": 140.0, "p99": 150.2, "max": 170.0}},
        },
        "verdicts": [
            {"expectation": "async.checkout.p99 < 1s", "outcome": "pass", "passed": True,
             "observed": "p99 150 ms", "reason": None, "evidence": {"n": 600}},
            {"expectation": "sync.errors < 1%", "outcome": "undetermined", "passed": False,
             "observed": "undetermined", "reason": "no sync lane in this run", "evidence": {}},
        ],
        "passed": False,
    }  # fmt: skip


def test_run_verdicts_reads_a_runs_summary(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(_summary()))
    read = run_verdicts(str(tmp_path))
    assert run_outcome(str(tmp_path)) == "undetermined"
    assert read == {
        "outcome": "undetermined",
        "verdicts": [
            {"expectation": "async.checkout.p99 < 1s", "outcome": "pass", "observed": "p99 150 ms", "reason": None},
            {"expectation": "sync.errors < 1%", "outcome": "undetermined", "observed": "undetermined",
             "reason": "no sync lane in this run"},
        ],
        "lanes": {"async": {"requests": 600, "error_rate": 0.0, "throughput_rps": 10.0,
                            "p50_ms": 80.1, "p95_ms": 140.0, "p99_ms": 150.2}},
    }  # fmt: skip


def test_run_verdicts_of_no_run(tmp_path: Path) -> None:
    with pytest.raises(InvalidActivity, match=r"^run_dir: .* has no summary.json; is it a finished run\?"):
        run_verdicts(str(tmp_path))
    with pytest.raises(InvalidActivity, match=r"^run_dir: expected a run directory's path"):
        run_verdicts(42)  # type: ignore[arg-type]
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ActivityFailed, match=r"^run_dir: .* can not be read"):
        run_verdicts(str(tmp_path))


def test_discovery_lists_every_activity() -> None:
    found = {(a["type"], a["name"]) for a in discover(discover_system=False)["activities"]}
    assert found == ACTIVITIES


def test_chaos_discover_finds_the_installed_extension(tmp_path: Path) -> None:
    """The real ``chaos discover``, as a user runs it: chaoslib looks ``chaosdoorbuster`` up as an
    installed distribution (``scripts/setup`` installs chaosdoorbuster/), imports the package it
    ships and writes its activities to ``discovery.json``.  Not found, it only logs and exits 0."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "chaos"), "--log-file", str(tmp_path / "chaostoolkit.log"),
         "discover", "--no-install", "chaosdoorbuster"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join(map(str, IMPORT_ROOTS))},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    written = tmp_path / "discovery.json"
    assert done.returncode == 0 and written.exists(), f"chaos discover found nothing: {done.stderr[-2000:]}"
    discovery = json.loads(written.read_text())
    assert discovery["extension"] == {"name": "chaosdoorbuster", "version": __version__}
    activities = discovery["activities"]
    assert {(a["type"], a["name"]) for a in activities} == ACTIVITIES
    assert {a["mod"] for a in activities} == {"chaosdoorbuster.actions", "chaosdoorbuster.probes"}
