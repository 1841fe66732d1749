"""A short scenario and a plain `locust -f` with its web UI, shared by the run and live-view tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from harness.binaries import PROJECT_ROOT
from tests.integration.conftest import RunningStack

SHORT = """
name: short
load:
  stages:
    - {name: baseline, duration: 8s, rate: 3}
    - {name: after, duration: 14s, rate: 3}
  poll: {initial: 0.5s, max: 2s, give_up: 60s}
chaos:
  - {name: email-slow, at: 8s, for: 6s, dependency: email, type: latency, attributes: {latency: 2000}}
expectations:
  # The median of ~24 log-normal chains (mean 1.89 s): under 1.7 s 6 times in 10,000, never under 1.6 s
  - "sync.checkout.p50 >= 1.6s at baseline"
  - "async.checkout.p50 < 0.8s at baseline"
  - "async.checkout.p50 < 1.5s during email-slow"
  - "async backlog drains within 60s after email-slow"
  - "no lost orders"
  - "sync.checkout.p50 < 0.1s at baseline"
drain_timeout: 60s
"""


def start_web_locust(stack: RunningStack, tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    """Plain `locust -f` with its web UI on loopback, against ``stack``, a one-minute `SHORT`."""
    scenario = tmp_path / "webui.yaml"
    scenario.write_text(
        SHORT.replace("duration: 14s", "duration: 60s")
        .replace("for: 6s", "for: 50s")
        .replace("at: 8s", "at: 1s")
    )
    env = {
        **os.environ,
        "DOORBUSTER_SCENARIO": str(scenario),
        "DOORBUSTER_STATE_DIR": str(stack.state_dir),
        "DOORBUSTER_RUN_DIR": str(tmp_path / "webrun"),
    }
    cmd = [sys.executable, "-m", "locust", "-f", str(PROJECT_ROOT / "locustfiles" / "black_friday.py"),
           "--web-host", "127.0.0.1", "--web-port", str(port)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("Locust's web UI did not start")
