"""The doorbuster CLI against the running stack: JSON status, faults, exit codes."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.stack.control import Stack
from harness.stack.state import StateDir
from model import metric_names as names
from model.errors import ExitCode
from model.settings import PortSettings, StackSettings
from tests.integration.conftest import RunningStack


def cli(stack: RunningStack, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--state-dir", str(stack.state_dir), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_json_names_lanes_toxiproxy_and_every_proxy(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(stack, capsys, "status", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["healthy"] is True
    assert data["lanes"]["sync"]["url"] == stack.url("sync")
    assert data["lanes"]["async"]["url"] == stack.url("async")
    assert data["toxiproxy"]["url"] == stack.topology.toxiproxy.url
    assert data["prometheus"]["url"] == stack.topology.prometheus.url
    proxies = {p["name"]: p for p in data["toxiproxy"]["proxies"]}
    assert set(proxies) == {p.name for p in stack.topology.proxies}
    assert proxies["async-broker"]["upstream"] == stack.topology.broker.address
    assert all(p["healthy"] for p in data["processes"])


def test_toxic_add_list_remove_on_both_lanes_by_default(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(stack, capsys, "toxic", "add", "email", "latency", "--attr", "latency=1000")
    assert code == 0, err
    code, out, _ = cli(stack, capsys, "toxic", "list", "--json")
    faults = json.loads(out)
    assert {(f["lane"], f["dependency"], f["type"]) for f in faults} == {
        ("sync", "email", "latency"),
        ("async", "email", "latency"),
    }
    assert all(f["attributes"]["latency"] == 1000 for f in faults)
    code, out, _ = cli(stack, capsys, "toxic", "remove", "email", "--lane", "sync")
    assert code == 0 and "removed 1" in out
    code, out, _ = cli(stack, capsys, "toxic", "list", "--json")
    assert [f["lane"] for f in json.loads(out)] == ["async"]
    code, _, _ = cli(stack, capsys, "toxic", "reset")
    assert code == 0
    assert stack.chaos.active() == []


def test_http_faults_and_proxy_down_through_the_same_verbs(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(stack, capsys, "toxic", "add", "payment", "http_error", "--lane", "async",
               "--attr", "rate=0.5", "--attr", "status=503")[0] == 0  # fmt: skip
    assert cli(stack, capsys, "toxic", "add", "email", "http_delay", "--attr", "latency=200")[0] == 0
    assert cli(stack, capsys, "proxy", "disable", "warehouse", "--lane", "sync")[0] == 0
    kinds = {(f.lane, f.dependency, f.type) for f in stack.chaos.active()}
    assert kinds == {
        ("async", "payment", "http_error"),
        ("sync", "email", "http_delay"),
        ("async", "email", "http_delay"),
        ("sync", "warehouse", "down"),
    }
    assert cli(stack, capsys, "proxy", "enable", "warehouse", "--lane", "sync")[0] == 0
    assert cli(stack, capsys, "toxic", "remove", "payment", "http_error")[0] == 0
    assert {f.type for f in stack.chaos.active()} == {"http_delay"}


def test_toxic_for_a_duration_is_removed_afterwards(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(stack, capsys, "toxic", "add", "analytics", "timeout", "--attr", "timeout=0",
                       "--lane", "async", "--for", "300ms")  # fmt: skip
    assert code == 0
    assert "removed 1" in out
    assert stack.chaos.active() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["toxic", "add", "email", "latencyy", "--attr", "latency=1"], "unknown fault type"),
        (["toxic", "add", "email", "latency"], "missing attribute"),
        (["toxic", "add", "email", "latency", "--attr", "latency=-5"], "negative"),
        (["toxic", "add", "email", "latency", "--attr", "latency"], "KEY=VALUE"),
        (["toxic", "add", "emial", "latency", "--attr", "latency=1"], "emial"),
        (["toxic", "add", "broker", "latency", "--attr", "latency=1", "--lane", "sync"], "broker"),
        (["toxic", "add", "email", "latency", "--attr", "latency=1", "--lane", "green"], "--lane"),
        (["toxic", "add", "email", "latency", "--attr", "latency=1", "--for", "soon"], "duration"),
        (["proxy", "disable", "nothing"], "nothing"),
        (["toxic", "add"], "Missing argument"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_arguments_exit_2_with_a_message_and_change_nothing(
    stack: RunningStack, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(stack, capsys, *args)
    assert code == ExitCode.USAGE
    assert message in out + err
    assert "Traceback" not in out + err
    assert stack.chaos.active() == []


def test_up_twice_is_harmless(stack: RunningStack) -> None:
    before = stack.stack.state.read_supervisor()
    topology = stack.stack.up(stack.topology.settings, timeout_s=30)
    assert topology.settings == stack.topology.settings
    assert stack.stack.state.read_supervisor() == before


def test_up_with_other_settings_while_running_is_refused(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(stack, capsys, "up", "--base-port", "23000", "--toxiproxy-port", "23474",
                       "--time-scale", "0.5")  # fmt: skip
    assert code == ExitCode.USAGE
    assert "other settings" in err


def test_a_supervisor_slow_to_start_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold machine can take seconds to start Python: ``up`` waits for the supervisor it
    started (up to its timeout) instead of calling it dead after 5 s while it goes on
    starting a stack nobody then stops."""
    site = tmp_path / "site"
    site.mkdir()
    # Only the supervisor sleeps: it takes the variable out of what its children inherit.
    (site / "sitecustomize.py").write_text(
        "import os, time\nif os.environ.pop('DOORBUSTER_TEST_SLOW_START', None):\n    time.sleep(8)\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("DOORBUSTER_TEST_SLOW_START", "1")
    stack = Stack(StateDir(tmp_path / "state"))
    try:
        started = time.monotonic()
        stack.up(StackSettings(ports=PortSettings(base=23500, toxiproxy_api=23974)), timeout_s=90)
        assert time.monotonic() - started > 8
        assert stack.status().running
    finally:
        stack.down()
    assert stack.supervisor_pid() is None


def test_a_busy_port_is_named_and_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 24001))
        squatter.listen()
        code = main(
            [
                "--state-dir",
                str(tmp_path),
                "up",
                "--base-port",
                "24000",
                "--toxiproxy-port",
                "24474",
            ]
        )
    err = capsys.readouterr().err
    assert code == ExitCode.ENVIRONMENT
    assert "24001" in err and "order-async" in err
    assert Stack(StateDir(tmp_path)).supervisor_pid() is None


def test_commands_without_a_stack_say_so_with_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--state-dir", str(tmp_path), "toxic", "list"])
    assert code == ExitCode.ENVIRONMENT
    assert "doorbuster up" in capsys.readouterr().err
    assert main(["--state-dir", str(tmp_path), "down"]) == 0


def test_a_bad_config_file_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "stack.yaml"
    config.write_text("sync:\n  threads: 0\n  retry: {attempts: 3, backoff_ms: [100, -1]}\n")
    code = main(["--state-dir", str(tmp_path), "up", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert str(config) in err.replace("\n", "") and "sync.threads" in err
    assert not (tmp_path / "stack.json").exists()


def test_settings_file_and_flags_combine(tmp_path: Path) -> None:
    from harness.config.settings import load_settings

    config = tmp_path / "s.yaml"
    config.write_text("sync: {threads: 4}\nasync: {prefetch: 3}\n")
    settings = load_settings(config, broker="rabbitmq", base_port=25000, toxiproxy_port=None, time_scale=0.5)
    assert settings == StackSettings.model_validate(
        {"sync": {"threads": 4}, "async": {"prefetch": 3},
         "ports": PortSettings(base=25000).model_dump(), "time_scale": 0.5}
    )  # fmt: skip


def test_up_with_a_scenario_starts_the_scenario_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``up --scenario retry-storm`` starts the scenario's 96-thread sync pool (not the seed's
    16), so ``locust -f locustfiles/retry_storm.py`` finds the stack it expects."""
    from harness.config.scenarios import load_scenario
    from harness.metrics.scrape import scrape

    state = tmp_path / "state"
    code = main(["--state-dir", str(state), "up", "--scenario", "retry-storm",
                 "--base-port", "26500", "--toxiproxy-port", "26974"])  # fmt: skip
    try:
        assert code == 0, capsys.readouterr().err
        topology = Stack(StateDir(state)).running_topology()
        page = scrape(topology.process("order-sync"))
        sizes = [sample.value for sample in page.select(names.THREAD_POOL_SIZE, lane="sync")]
        assert sizes == [96.0]
        scenario, _ = load_scenario("retry-storm")
        # What the locustfile compares before it warns that the stack is not the scenario's.
        assert topology.settings.model_copy(update={"ports": scenario.stack.ports}) == scenario.stack
    finally:
        assert main(["--state-dir", str(state), "down"]) == 0


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_status_names_and_removes_a_fault_whose_owner_is_gone(
    stack: RunningStack, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    """What a run killed with kill -9 leaves: its lease and its fault in force."""
    import subprocess

    from harness.faults.leases import FaultLease
    from model.faults import FaultSpec

    owner = subprocess.Popen(["true"])
    owner.wait()
    spec = FaultSpec(dependency="email", type="latency", lanes=("sync",), attributes={"latency": 3000})
    FaultLease(stack.state_dir, owner="doorbuster run", pid=owner.pid).hold(
        spec.lanes, spec.dependency, spec.toxic_name
    )
    stack.chaos.add(spec)
    code, out, err = cli(stack, capsys, "status", *(["--json"] if as_json else []))
    assert code == 0, err
    if as_json:
        data = json.loads(out)
        assert data["leftover_faults"] == [
            {"lane": "sync", "dependency": "email", "name": spec.toxic_name, "owner": "doorbuster run",
             "owner_pid": owner.pid, "removed": True, "error": None}
        ]  # fmt: skip
        assert data["faults"] == []
    else:
        assert "faults active: 0" in out
        assert "faults whose owner is gone: 1" in out
        named = f"removed: sync-email {spec.toxic_name} (left by doorbuster run, pid {owner.pid}, gone)"
        assert named in " ".join(out.split())  # the console wraps long lines
    assert stack.chaos.active() == []
    assert not list((stack.state_dir / "leases").glob("*.json"))


def test_the_stack_runs_below_the_harness_priority(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every server the supervisor started runs 5 nicer than the harness, so the load generator's
    timers come first on a shared machine (docs/running/generator.md, "Sharing a machine")."""
    code, out, _ = cli(stack, capsys, "status", "--json")
    assert code == 0
    pids = {p["name"]: p["pid"] for p in json.loads(out)["processes"] if p["pid"] is not None}
    assert {"toxiproxy", "broker", "prometheus", "order-sync", "order-async"} <= set(pids), pids
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert {name: os.getpriority(os.PRIO_PROCESS, pid) - ours for name, pid in pids.items()} == dict.fromkeys(
        pids, 5
    )
