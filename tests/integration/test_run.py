"""``doorbuster run`` and plain ``locust -f`` against the real stack, briefly."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness.binaries import PROJECT_ROOT, find_binary
from harness.cli.main import main
from harness.metrics.panels import PANELS
from model.errors import ExitCode
from tests.integration.conftest import RunningStack
from tests.integration.short_run import SHORT, start_web_locust


def _cli(stack: RunningStack, *args: str) -> int:
    return main(["--state-dir", str(stack.state_dir), *args])


def test_a_short_run_writes_summary_report_and_verdicts(
    stack: RunningStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "short.yaml"
    # ~18 arrivals in the fault can not bound a p99 from above: undetermined, and it says why.
    scenario.write_text(
        SHORT.replace("drain_timeout:", '  - "async.checkout.p99 < 1.5s during email-slow"\ndrain_timeout:')
    )
    out = tmp_path / "run"
    # The last expectations are false or undecidable on purpose: either is exit 1, and the
    # others are still judged on their own.
    assert _cli(stack, "run", str(scenario), "--out", str(out)) == ExitCode.EXPECTATION_FAILED
    # The stack it used is left running, and the run says so and how to stop it.
    assert "`doorbuster down` stops it" in " ".join(capsys.readouterr().out.split())
    assert stack.stack.supervisor_pid() is not None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "short"
    assert 20 <= summary["duration_s"] <= 30
    for lane in ("sync", "async"):
        figures = summary["lanes"][lane]
        assert figures["requests"] == 66  # 3/s for 22 s, the same arrivals on both lanes
        assert set(figures["latency_ms"]) == {"p50", "p95", "p99", "max"}
        assert {"errors", "error_rate", "throughput_rps"} <= set(figures)
    orders = summary["lanes"]["async"]["orders"]
    assert orders["accepted"] == 66 and orders["fulfilled"] == 66 and orders["lost"] == 0
    assert set(summary["lanes"]["async"]["fulfillment_ms"]) == {"p50", "p95", "p99"}
    assert summary["retry_amplification"]["sync"] >= 5.0
    assert summary["chaos"][0]["name"] == "email-slow" and summary["chaos"][0]["applied"]
    verdicts = {v["expectation"]: v for v in summary["verdicts"]}
    assert verdicts.pop("sync.checkout.p50 < 0.1s at baseline")["outcome"] == "fail"
    undecided = verdicts.pop("async.checkout.p99 < 1.5s during email-slow")
    assert undecided["outcome"] == "undetermined" and undecided["passed"] is False
    assert (
        undecided["reason"].startswith("too few samples (n=")
        and "a p99 needs at least 368" in undecided["reason"]
    )
    assert undecided["evidence"]["window"]["fault"]["applied"] is True
    assert all(v["outcome"] == "pass" for v in verdicts.values()), summary["verdicts"]
    assert summary["passed"] is False
    page = (out / "report.html").read_text()
    assert "FAILED" in page and "UNDETERMINED" in page and "email was 2 s slow" in page
    for png in ("story-arrivals.png", "story-latency.png", "story-backlog.png", "fulfillment.png", "panel-pool.png",
                "panel-backlog.png"):  # fmt: skip
        assert (out / png).stat().st_size > 5000, png
    assert (out / "locust_stats.csv").exists() and (out / "locust.html").exists()
    assert stack.chaos.active() == []

    # No dead panels: every panel's query returned data from the real Prometheus for this run.
    series = json.loads((out / "series.json").read_text())
    assert not series.get("errors"), series.get("errors")
    for panel in PANELS:
        if not panel.in_report:
            # The generator's panels: the report draws them from generator.jsonl, and
            # test_live_view.py checks their queries against the real Prometheus.
            assert panel.key not in series["panels"], panel.key
            continue
        lines = series["panels"].get(panel.key)
        assert lines, f"panel {panel.key!r} ({panel.title}) returned no data"
        assert any(not math.isnan(v) for line in lines for _, v in line["points"]), panel.key

    (out / "report.html").unlink()
    assert _cli(stack, "report", str(out)) == 0
    assert "email-slow" in (out / "report.html").read_text()

    # Judged again from the run directory alone, with a state dir that has no stack.
    no_stack = ["--state-dir", str(tmp_path / "no-stack")]
    capsys.readouterr()
    assert main([*no_stack, "judge", str(out), "--json"]) == ExitCode.EXPECTATION_FAILED
    assert json.loads(capsys.readouterr().out)["verdicts"] == summary["verdicts"]
    assert main([*no_stack, "judge", str(out)]) == ExitCode.EXPECTATION_FAILED
    assert json.loads((out / "summary.json").read_text()) == summary
    other = tmp_path / "other.yaml"
    other.write_text(
        SHORT.split("expectations:")[0]
        + 'expectations: ["sync.checkout.p50 > 1s during email-slow", "async.checkout.p50 > 5s at baseline"]\n'
    )
    capsys.readouterr()
    assert (
        main([*no_stack, "judge", str(out), "--scenario", str(other), "--json"])
        == ExitCode.EXPECTATION_FAILED
    )
    judged = json.loads(capsys.readouterr().out)["verdicts"]
    assert [(v["expectation"], v["outcome"]) for v in judged] == [
        ("sync.checkout.p50 > 1s during email-slow", "pass"),
        ("async.checkout.p50 > 5s at baseline", "fail"),
    ], judged
    assert not (tmp_path / "no-stack").exists()


def test_distributed_workers_feed_one_log(stack: RunningStack, tmp_path: Path) -> None:
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SHORT.replace('  - "sync.checkout.p50 < 0.1s at baseline"\n', ""))
    out = tmp_path / "run"
    assert _cli(stack, "run", str(scenario), "--out", str(out), "--workers", "2", "--duration", "12s") == 0
    summary = json.loads((out / "summary.json").read_text())
    # 3/s for 12 s per lane, split between two workers: every arrival's record, each worker's
    # shard merged into the run's one log.
    assert summary["lanes"]["sync"]["requests"] == 36
    assert summary["lanes"]["async"]["requests"] == 36


def test_a_bad_scenario_starts_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(SHORT.replace("rate: 3}", "rate: lots}", 1))
    out = tmp_path / "run"
    code = main(["--state-dir", str(tmp_path / "state"), "run", str(scenario), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "load.stages.0.rate" in err and str(scenario) in err.replace("\n", "")
    assert not out.exists()
    assert not (tmp_path / "state" / "supervisor.json").exists()


def _wait_for_faults(stack: RunningStack, present: bool, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if bool(stack.chaos.active()) == present:
            return
        time.sleep(0.3)
    raise AssertionError(
        f"faults {'never appeared' if present else 'were left behind'}: {stack.chaos.active()}"
    )


def test_plain_locust_web_ui_runs_the_timeline_and_cleans_up_on_stop_and_quit(
    stack: RunningStack, tmp_path: Path
) -> None:
    port = 23089
    proc = start_web_locust(stack, tmp_path, port)
    try:
        form = {"user_count": 1, "spawn_rate": 1}
        assert requests.post(f"http://127.0.0.1:{port}/swarm", data=form, timeout=10).ok
        _wait_for_faults(stack, present=True)
        assert requests.post(f"http://127.0.0.1:{port}/stop", timeout=10).ok
        _wait_for_faults(stack, present=False)

        assert requests.post(f"http://127.0.0.1:{port}/swarm", data=form, timeout=10).ok
        _wait_for_faults(stack, present=True)
        os.killpg(proc.pid, signal.SIGTERM)  # quit, as Ctrl-C or a supervisor would
        proc.wait(30)
        _wait_for_faults(stack, present=False)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_ctrl_c_stops_the_run_removes_every_fault_and_still_reports(
    stack: RunningStack, tmp_path: Path
) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(SHORT.replace("duration: 14s", "duration: 120s").replace("for: 6s", "for: 100s"))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness.cli.main", "--state-dir", str(stack.state_dir), "run", str(scenario),
           "--out", str(out)]  # fmt: skip
    # As from a terminal: a suite started in the background (`make test &`) would hand its
    # children SIGINT ignored, and Python then installs no KeyboardInterrupt for it.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=PROJECT_ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        _wait_for_faults(stack, present=True, timeout=60)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert stack.chaos.active() == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["passed"] is False
    assert (out / "report.html").exists()
    assert "Traceback" not in err.decode()


def test_ctrl_c_while_waiting_for_the_drain_stops_waiting_and_still_reports(
    stack: RunningStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.run.runner

    def ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # what Python raises when Ctrl-C comes during the wait

    monkeypatch.setattr(harness.run.runner, "wait_drained", ctrl_c)
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SHORT)
    out = tmp_path / "run"
    assert _cli(stack, "run", str(scenario), "--out", str(out)) == 130
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["drain_cut_short"] is True
    assert summary["passed"] is False and summary["drained_after_load_s"] is None
    orders = summary["lanes"]["async"]["orders"]
    # Every order that got its 202 is stored: finished, or in flight, and none lost.
    assert orders["accepted"] == 66 and orders["lost"] == 0
    assert orders["fulfilled"] + orders["failed"] + orders["in_flight"] == orders["accepted"]
    assert (out / "report.html").exists()
    assert stack.chaos.active() == []


TINY = """
name: tiny
load:
  stages:
    - {name: baseline, duration: 5s, rate: 2}
  poll: {initial: 0.5s, max: 2s, give_up: 30s}
expectations:
  - "no lost orders"
drain_timeout: 30s
"""


def test_a_fault_added_outside_doorbuster_is_named_and_a_run_refuses_it_until_reset_faults(
    stack: RunningStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A toxic added with the real toxiproxy-cli (as Chaos Toolkit's Toxiproxy driver would add
    it) beside one of doorbuster's own."""
    cli = str(find_binary("toxiproxy-cli"))
    host = f"http://{stack.topology.toxiproxy.address}"
    added = subprocess.run(
        [cli, "-h", host, "toxic", "add", "-t", "latency", "-a", "latency=700", "-n", "ctk_slow", "sync-email"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert _cli(stack, "toxic", "add", "payment", "latency", "--attr", "latency=5", "--lane", "async") == 0
    capsys.readouterr()

    assert _cli(stack, "status", "--json") == 0
    faults = {
        (f["lane"], f["dependency"], f["name"]): f for f in json.loads(capsys.readouterr().out)["faults"]
    }
    foreign = faults[("sync", "email", "ctk_slow")]
    assert (foreign["foreign"], foreign["origin"], foreign["owner"]) == (True, "foreign", None)
    ours = faults[("async", "payment", "doorbuster_latency_downstream")]
    assert (ours["foreign"], ours["owner"]) == (False, "doorbuster toxic add")
    assert _cli(stack, "status") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "sync-email: latency {'latency': 700, 'jitter': 0} applied outside doorbuster" in text
    assert "async-payment: latency {'latency': 5, 'jitter': 0} (applied by doorbuster toxic add)" in text
    assert _cli(stack, "toxic", "list", "--json") == 0
    listed = {(f["lane"], f["name"]): f["origin"] for f in json.loads(capsys.readouterr().out)}
    assert listed == {
        ("sync", "ctk_slow"): "foreign",
        ("async", "doorbuster_latency_downstream"): "doorbuster",
    }
    assert _cli(stack, "toxic", "list") == 0  # a column, "applied by"; an 80-column console cuts it short
    rows = capsys.readouterr().out.splitlines()
    assert any("ctk_slow" in row and "outside" in row for row in rows), rows

    scenario, out = tmp_path / "tiny.yaml", tmp_path / "run"
    scenario.write_text(TINY)
    assert _cli(stack, "run", str(scenario), "--out", str(out)) == ExitCode.ENVIRONMENT
    err = " ".join(capsys.readouterr().err.split())
    assert "ForeignFaults: 1 fault(s) applied outside doorbuster: sync-email latency toxic 'ctk_slow'" in err
    assert "--reset-faults" in err
    assert not out.exists()  # nothing written, and nothing removed: both faults are as they were
    assert {(f.lane, f.name) for f in stack.chaos.active()} == {
        ("sync", "ctk_slow"),
        ("async", "doorbuster_latency_downstream"),
    }

    assert _cli(stack, "run", str(scenario), "--out", str(out), "--reset-faults") == ExitCode.OK
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "removing a fault applied outside doorbuster (--reset-faults): sync-email latency toxic 'ctk_slow'"
        in err
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lanes"]["sync"]["requests"] == 10 and summary["passed"]
    assert stack.chaos.active() == []
