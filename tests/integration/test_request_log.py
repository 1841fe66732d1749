"""Plain ``locust -f`` never appends to a request log it did not create: two runs' records
in one ``requests.jsonl`` would be read as one run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from harness.binaries import PROJECT_ROOT
from harness.records.schema import read_requests

# No chaos, so no stack is needed: the load goes to DOORBUSTER_TARGETS.
SCENARIO = """\
name: no-stack
load: {stages: [{name: baseline, duration: 3s, rate: 5}]}
expectations: ["no lost orders"]
"""
EARLIER = (
    '{"lane": "sync", "kind": "checkout", "intended_start": 1.0, "start": 1.0, "end": 2.0, '
    '"status": 200, "ok": true, "order_id": "earlier-run", "attempt": 0}\n'
)


def _closed_port() -> int:
    """A loopback port nothing listens on: every request is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _locust(tmp_path: Path, run_dir: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "s.yaml").write_text(SCENARIO)
    url = f"http://127.0.0.1:{_closed_port()}"
    env = {
        **os.environ,
        "DOORBUSTER_SCENARIO": str(tmp_path / "s.yaml"),
        "DOORBUSTER_STATE_DIR": str(tmp_path / "no-stack"),
        "DOORBUSTER_RUN_DIR": str(run_dir),
        "DOORBUSTER_TARGETS": json.dumps({"sync": url, "async": url}),
    }
    cmd = [sys.executable, "-m", "locust", "-f", str(PROJECT_ROOT / "locustfiles" / "shoppers.py"),
           "--headless", "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90, check=False)


def test_locust_refuses_a_run_directory_with_a_request_log(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "requests.jsonl").write_text(EARLIER)
    done = _locust(tmp_path, run_dir)
    assert done.returncode != 0, done.stderr[-2000:]
    assert f"{run_dir / 'requests.jsonl'} already exists" in done.stderr, done.stderr[-2000:]
    assert (run_dir / "requests.jsonl").read_text() == EARLIER


def test_locust_writes_a_new_request_log(tmp_path: Path) -> None:
    # The same command on a fresh directory runs: the refusal above is about the log alone.
    done = _locust(tmp_path, tmp_path / "run")
    log = tmp_path / "run" / "requests.jsonl"
    assert log.exists() and log.read_text(), done.stderr[-2000:]
    assert {rec.lane for rec in read_requests(log)} == {"sync", "async"}
