"""A short scenario and a plain `locust -f` with its web UI, shared by the run and live-view tests;
and a trivial order server with Locust's master and workers as processes, for the generator tests;
and bench/trivial (Go, answers at once) built and started, for the runs that push a generator."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from harness.binaries import PROJECT_ROOT
from harness.metrics.scrape import MetricsPage, read_page
from model.errors import MetricsUnreadable
from model.settings import PortSettings, StackSettings
from model.topology import Topology
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


class _Orders(BaseHTTPRequestHandler):
    """Answers every order after ``delay_s`` (at once unless a test wants latency); notes when
    each one came, by its own clock (the generators' log is not the only witness)."""

    received: list[float]
    delay_s: float = 0.0

    def do_POST(self) -> None:
        self.received.append(time.time())
        time.sleep(self.delay_s)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"order_id": f"o-{time.monotonic_ns()}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@contextlib.contextmanager
def orders_server(delay_s: float, host: str = "127.0.0.1") -> Iterator[tuple[str, list[float]]]:
    received: list[float] = []
    handler = type("Orders", (_Orders,), {"received": received, "delay_s": delay_s})
    server = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def trivial_endpoint(build_dir: Path, *, core: int) -> Iterator[str]:
    """bench/trivial, built in ``build_dir`` and pinned to ``core``; its base URL, until it stops."""
    binary = build_dir / "trivial"
    subprocess.run(
        ["go", "build", "-o", str(binary), "."], cwd=PROJECT_ROOT / "bench" / "trivial", check=True
    )
    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(["taskset", "-c", str(core), str(binary), "-addr", url.removeprefix("http://")])
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{url}/records", timeout=1)
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_locust(role: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(PROJECT_ROOT / "locustfiles" / "shoppers.py"),
        "--loglevel",
        "WARNING",
        *role,
    ]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def master_args(port: int, workers: int) -> list[str]:
    return ["--headless", "--only-summary", "--master", "--expect-workers", str(workers),
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]  # fmt: skip


def worker_args(port: int) -> list[str]:
    return ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def open_model_env(tmp: Path, url: str, workers: int, *, rate: float, seconds: float) -> dict[str, str]:
    """An open-model scenario of one sync lane to ``url``, no stack: its Locust environment."""
    scenario = {
        "name": "interleaved-arrivals",
        "load": {
            "model": "open",
            "lanes": ["sync"],
            "stages": [{"name": "steady", "duration": seconds, "rate": rate}],
            "think_time": 0,
            "impatient": {"timeout": "10s", "retries": 0},
            "max_in_flight": 5000,
        },
    }
    (tmp / "scenario.json").write_text(json.dumps(scenario))
    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DOORBUSTER_SCENARIO": str(tmp / "scenario.json"),
        "DOORBUSTER_TARGETS": json.dumps({"sync": url}),
        "DOORBUSTER_RUN_DIR": str(tmp),
        "DOORBUSTER_STATE_DIR": str(tmp / "no-stack"),
        "DOORBUSTER_WORKERS": str(workers),
    }


def scraped_distributed_run(
    tmp: Path, url: str, workers: int, *, rate: float, seconds: float, base: int
) -> MetricsPage:
    """A distributed open-model run to ``url`` (a master and ``workers`` workers, the master's
    exporter on the ports of a stack file at ``base``): the exporter's last scrape before the
    master ended (None if it never answered), which must end well."""
    stack = Topology.from_settings(StackSettings(ports=PortSettings(base=base)))
    (tmp / "stack.json").write_text(stack.to_json())
    exporter = stack.endpoint("locust-exporter")
    port = free_port()
    env = {
        **open_model_env(tmp, url, workers, rate=rate, seconds=seconds),
        "DOORBUSTER_STACK_FILE": str(tmp / "stack.json"),
    }
    procs = [start_locust(master_args(port, workers), env, tmp / "master.log")]
    page: MetricsPage | None = None
    try:
        procs += [start_locust(worker_args(port), env, tmp / f"worker-{i}.log") for i in range(workers)]
        deadline = time.time() + seconds + 60
        while procs[0].poll() is None and time.time() < deadline:
            with contextlib.suppress(MetricsUnreadable):
                page = read_page(f"{exporter.url}/metrics", process="locust-exporter", timeout_s=2)
            time.sleep(0.25)
    finally:
        stop_all(procs)
    assert procs[0].returncode == 0, (tmp / "master.log").read_text()[-2000:]
    assert page is not None, "the exporter never answered"
    return page
