"""A worker lost mid-run is named, and the verdicts over windows it was part of undetermined:
a 2-worker `doorbuster run` against bench/trivial, one of its Locust workers killed with
SIGKILL 8 s into the load. Its shard stays `.part`, the master merges it as far as written,
and summary.json names the worker with its arrivals that have no record.

Run inside ``unshare --net`` so ports never collide.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.records.run_dir import RunDir
from harness.records.schema import read_requests
from harness.stack.state import StateDir
from model.errors import ExitCode
from tests.integration.conftest import RunningStack

RATE = 100  # arrivals a second: 50 a worker; 600 in the early stage bound its p99
SECONDS = 20
KILL_AT_S = 8.0
SCENARIO = f"""
name: lost-worker
load:
  lanes: [sync]
  stages:
    - {{name: early, duration: 6s, rate: {RATE}}}
    - {{name: late, duration: {SECONDS - 6}s, rate: {RATE}}}
  impatient: {{timeout: 5s}}
expectations:
  - "sync.checkout.p99 < 2s at early"
  - "sync.checkout.p99 < 2s at late"
drain_timeout: 5s
"""


def _kill_a_worker(state: StateDir, run_dir: RunDir, run: subprocess.Popen[str]) -> int:
    """SIGKILL to the last worker Locust started, KILL_AT_S after the load's first records; its pid."""
    deadline = time.time() + 120
    while not any(run_dir.shard_files()) or len(state.read_load_pids()) < 3:
        assert run.poll() is None and time.time() < deadline, "the run never started its workers"
        time.sleep(0.1)
    while not any(p.stat().st_size for p in run_dir.shard_files()):  # the schedule has started
        assert run.poll() is None and time.time() < deadline, "no worker wrote a record"
        time.sleep(0.1)
    time.sleep(KILL_AT_S)
    pid = state.read_load_pids()[-1][0]
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_worker_killed_mid_run_is_named_and_its_windows_undetermined(
    stack: RunningStack, tmp_path: Path, trivial: str
) -> None:
    scenario = tmp_path / "lost-worker.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness.cli.main", "--state-dir", str(stack.state_dir), "run", str(scenario),
           "--target", f"sync={trivial}", "--workers", "2", "--out", str(out)]  # fmt: skip
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _kill_a_worker(StateDir(stack.state_dir), RunDir(out), run)
        output, _ = run.communicate(timeout=SECONDS + 240)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert (out / "summary.json").exists(), output[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    (lost,) = summary["lost_workers"]
    assert lost["shard_closed"] is False
    assert (out / "shards" / f"worker-{lost['worker']}.jsonl.part").exists()
    assert 6.0 < lost["lost_at_s"] < SECONDS
    # Half the schedule is the lost worker's: what it sent after it died, at the least, has no record.
    after = (SECONDS - lost["lost_at_s"]) * RATE / 2
    assert after - RATE <= lost["arrivals_without_record"] <= RATE * SECONDS / 2
    first_attempts = [r for r in read_requests(out / "requests.jsonl") if r.attempt == 0]
    assert len(first_attempts) + lost["arrivals_without_record"] == RATE * SECONDS
    early, late = summary["verdicts"]
    assert early["outcome"] == "pass", early  # its window ended before the worker was lost
    assert late["outcome"] == "undetermined", late
    assert f"worker {lost['worker']} was lost" in late["reason"]
    assert f"{lost['arrivals_without_record']} of its arrivals have no record" in late["reason"]
    assert "a rerun" in late["reason"]
    assert any(line.startswith(f"Generator worker {lost['worker']} was lost") for line in summary["reading"])
    assert run.returncode == ExitCode.EXPECTATION_FAILED, output[-3000:]  # undecided is not a pass
