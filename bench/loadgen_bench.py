"""Benchmark of the load generator itself, against a trivial Go endpoint, in one run.

    .venv/bin/python bench/loadgen_bench.py          # about 3 minutes

(a) throughput: the harness's shoppers against a plain Locust ``FastHttpUser``, same users,
    same trivial endpoint, each generator pinned to the same core (the server to the other);
    prints requests per second of each and their ratio (target >= 1.5), with wrk's figure on
    the same endpoint, core, connections and duration beside them as the ceiling (wrk is
    Debian's package ``wrk``; ``scripts/setup`` installs it).
(b) coordinated omission, at wrk2's own numbers: 2,000 arrivals/s for 10 s while the endpoint
    stalls for 1.4 s. The bench sets when the schedule starts and computes the schedule itself;
    the endpoint records on its own clock when each request came and was answered; the k-th
    request answers the k-th arrival. That gives the true p99 without asking the generator
    under test (its own log and X-Intended-Start header are only compared with it). Prints our
    open-model p99 against it (target within 5 %), the achieved arrival rate (target >= 99 %),
    and what a plain closed-loop Locust run paced to the same rate reports for the same stall.
    One generator process, pinned to one core, sends the 2,000/s.
(c) the same stall measured by k6's constant-arrival-rate executor, when k6 is installed
    (``go install go.k6.io/k6@v1.8.1``; it looks in PATH and .tools/bin).

Everything listens on and sends to 127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from targets_check import Target, report

from harness.analysis.estimates import percentile
from harness.records.schema import read_requests

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".tools" / "bin"
PY = sys.executable
# From starting Locust to the schedule's first arrival: time for Locust to start.
START_LEAD_S = 10.0
# The targets: shoppers' req/s over plain FastHttpUser's; wrk2's own stall test (its README:
# 2,000 requests/s, a 1.4 s stall) with the open model's p99 this close to the true one.
THROUGHPUT_TARGET = 1.5
STALL_RATE = 2000.0
STALL_S = 1.4
P99_TOLERANCE = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def go_build(folder: str, binary: str) -> Path:
    """``bench/<folder>`` built with ``go build`` into .tools/bin/``binary``."""
    out = BIN / binary
    BIN.mkdir(parents=True, exist_ok=True)
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=ROOT / "bench" / folder, check=True)
    return out


def build_server() -> Path:
    return go_build("trivial", "doorbuster-trivial")


@contextlib.contextmanager
def server(binary: Path, stall_at: float = -1, stall_for: float = 1.4) -> Iterator[str]:
    port = free_port()
    cmd = ["taskset", "-c", "1", str(binary), "-addr", f"127.0.0.1:{port}",
           "-stall-at", str(stall_at), "-stall-for", str(stall_for)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{url}/records", timeout=1)
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def locust(args: list[str], env: dict[str, str], timeout: float) -> None:
    cmd = [
        "taskset",
        "-c",
        "0",
        PY,
        "-m",
        "locust",
        "--headless",
        "--only-summary",
        "--loglevel",
        "ERROR",
        *args,
    ]
    subprocess.run(cmd, env={**os.environ, **env}, timeout=timeout, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def stats_row(prefix: Path, name: str) -> dict[str, str]:
    with open(f"{prefix}_stats.csv") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == name:
                return row
    raise KeyError(name)


def ours(
    url: str, work: Path, stages: list[dict[str, Any]], model: str, tag: str, start_at: float | None = None
) -> Path:
    scenario = {
        "name": f"bench-{tag}",
        "load": {"model": model, "lanes": ["sync"], "stages": stages, "think_time": 0,
                 "impatient": {"timeout": "10s", "retries": 0}, "max_in_flight": 5000},
    }  # fmt: skip
    run_dir = work / tag
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.json").write_text(json.dumps(scenario))
    env = {
        "DOORBUSTER_SCENARIO": str(run_dir / "scenario.json"),
        "DOORBUSTER_TARGETS": json.dumps({"sync": url}),
        "DOORBUSTER_RUN_DIR": str(run_dir),
        "DOORBUSTER_STATE_DIR": str(work / "no-stack"),
    }
    if start_at is not None:
        env["DOORBUSTER_START_AT"] = f"{start_at:.4f}"
    duration = sum(float(s["duration"]) for s in stages)
    if start_at is not None:
        duration += max(0.0, start_at - time.time())
    locust(
        ["-f", str(ROOT / "locustfiles" / "shoppers.py"), "--csv", str(run_dir / "locust")],
        env,
        duration + 60,
    )
    return run_dir


def plain(url: str, work: Path, users: int, seconds: float, tag: str, rate: float = 0) -> Path:
    run_dir = work / tag
    run_dir.mkdir(parents=True)
    args = ["-f", str(ROOT / "bench" / "plain_fasthttp.py"), "--host", url, "-u", str(users), "-r", str(users),
            "-t", f"{seconds:g}s", "--csv", str(run_dir / "locust")]  # fmt: skip
    locust(args, {"PLAIN_RATE": str(rate)}, seconds + 60)
    return run_dir


# The plain shopper's request (bench/plain_fasthttp.py), for wrk.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"customer_id": "shopper-1", "items": [{"sku": "tv-55", "qty": 1}]}'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(binary: Path, work: Path, connections: int, seconds: float) -> float:
    """wrk's requests per second on the same endpoint and core, as many connections as users,
    for the same time: what one core can send at all (NaN when wrk is not installed)."""
    found = shutil.which("wrk")
    if found is None:
        print("wrk is not installed (scripts/setup installs Debian's package wrk): no ceiling", flush=True)
        return math.nan
    script = work / "wrk.lua"
    script.write_text(WRK_SCRIPT)
    with server(binary) as url:
        cmd = ["taskset", "-c", "0", found, "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script),
               f"{url}/orders"]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    found_rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if found_rps is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    return float(found_rps.group(1))


def throughput(binary: Path, work: Path, users: int, seconds: float, rounds: int) -> dict[str, Any]:
    ours_rps, plain_rps, wrk_rps = [], [], []
    for i in range(rounds):  # interleaved, so drift hits all alike
        with server(binary) as url:
            d = ours(
                url, work, [{"name": "flat-out", "duration": seconds, "rate": users}], "closed", f"a-ours-{i}"
            )
            ours_rps.append(float(stats_row(d / "locust", "sync checkout")["Requests/s"]))
        with server(binary) as url:
            d = plain(url, work, users, seconds, f"a-plain-{i}")
            plain_rps.append(float(stats_row(d / "locust", "sync checkout")["Requests/s"]))
        wrk_rps.append(wrk(binary, work, users, seconds))
    ratio = statistics.median(o / p for o, p in zip(ours_rps, plain_rps, strict=True))
    return {"users": users, "seconds": seconds, "ours_rps": ours_rps, "plain_rps": plain_rps,
            "wrk_rps": wrk_rps, "ratio": ratio}  # fmt: skip


def received(url: str) -> tuple[list[tuple[float, float]], int]:
    """What the endpoint saw, on its own clock: (received, answered) of every request, in the
    order received, and how many it answered."""
    data = requests.get(f"{url}/records", timeout=30).json()
    seen = sorted((r["received"], r["answered"]) for r in data["records"] or [])
    return seen, int(data["count"])


def true_latencies(schedule: list[float], seen: list[tuple[float, float]]) -> list[float]:
    """Each scheduled arrival's latency, from the bench's own schedule to the endpoint's answer:
    the k-th request received answers the k-th arrival (an open-model generator sends in
    schedule order), and an arrival the generator never sent waits forever.

    >>> true_latencies([0.0, 1.0, 2.0], [(0.1, 0.2), (1.5, 1.6)])
    [0.2, 0.6000000000000001, inf]
    """
    return [seen[k][1] - intended if k < len(seen) else math.inf for k, intended in enumerate(schedule)]


def stall(
    binary: Path, work: Path, rate: float, seconds: float, stall_at: float, stall_for: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"rate": rate, "seconds": seconds, "stall_s": stall_for}
    with server(binary, stall_at, stall_for) as url:
        # The bench sets when the schedule starts and computes it itself, so the truth does not
        # come from the generator under test (its log and its X-Intended-Start are compared
        # with it, not used for it).
        start = math.floor((time.time() + START_LEAD_S) * 10_000) / 10_000
        schedule = [start + k / rate for k in range(math.ceil(rate * seconds - 1e-9))]
        d = ours(url, work, [{"name": "steady", "duration": seconds, "rate": rate}], "open", "b-ours", start)
        seen, count = received(url)
        latencies = true_latencies(schedule, seen)
        row = stats_row(d / "locust", "sync checkout")
        records = read_requests(d / "requests.jsonl")
        ours_lat = [r.end - r.intended_start for r in records if r.kind == "checkout"]
        span = seen[-1][0] - seen[0][0] + 1 / rate if seen else math.inf
        out["ours"] = {
            "scheduled": len(schedule),
            "sent": count,
            "unscheduled": max(0, count - len(schedule)),
            "p99_locust_s": float(row["99%"]) / 1000,
            "p99_log_s": percentile(ours_lat, 0.99),
            "true_p99_s": percentile(latencies, 0.99),
            "true_p95_s": percentile(latencies, 0.95),
            "p95_log_s": percentile(ours_lat, 0.95),
            "achieved_rate": min(count, len(schedule)) / span,
            "first_late_s": seen[0][0] - start if seen else math.inf,
        }
    out["plain"] = []
    for users in (10, 50):  # how many users a closed-loop test spreads the rate over changes what it hides
        with server(binary, stall_at, stall_for) as url:
            d = plain(url, work, users, seconds, f"b-plain-{users}", rate=rate / users)
            _, count = received(url)
            row = stats_row(d / "locust", "sync checkout")
            out["plain"].append({"users": users, "sent": count, "p95_s": float(row["95%"]) / 1000,
                                 "p99_s": float(row["99%"]) / 1000, "achieved_rate": count / seconds})  # fmt: skip
    return out


K6_SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { stall: { executor: 'constant-arrival-rate', rate: __RATE__, timeUnit: '1s',
    duration: '__SECONDS__s', preAllocatedVUs: 1000, maxVUs: 3000 } },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};
export default function () {
  http.post('__URL__/orders', '{"customer_id":"k6","items":[{"sku":"tv-55","qty":1}]}',
    { headers: { 'Content-Type': 'application/json' } });
}
"""


def find_k6(install: bool) -> str | None:
    """k6 from PATH or .tools/bin; built from its Go module into .tools/bin when missing."""
    found = shutil.which("k6") or (str(BIN / "k6") if (BIN / "k6").exists() else None)
    if found or not install:
        return found
    print("building k6 v1.8.1 with go install (a few minutes, once)...", flush=True)
    subprocess.run(["go", "install", "go.k6.io/k6@v1.8.1"], env={**os.environ, "GOBIN": str(BIN)}, check=True)
    return str(BIN / "k6")


def k6(
    k6_bin: str | None,
    binary: Path,
    work: Path,
    rate: float,
    seconds: float,
    stall_at: float,
    stall_for: float,
) -> dict[str, Any] | None:
    if k6_bin is None:
        return None
    with server(binary, stall_at, stall_for) as url:
        script = work / "k6.js"
        script.write_text(K6_SCRIPT.replace("__RATE__", str(int(rate))).replace("__SECONDS__", str(int(seconds)))
                          .replace("__URL__", url))  # fmt: skip
        summary = work / "k6-summary.json"
        subprocess.run(["taskset", "-c", "0", k6_bin, "run", "--quiet", "--summary-export", str(summary), str(script)],
                       check=True, timeout=seconds + 120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        metrics = json.loads(summary.read_text())["metrics"]
        count = received(url)[1]
    dropped = metrics.get("dropped_iterations", {}).get("count", 0)
    return {
        "sent": count,
        "p95_s": metrics["http_req_duration"]["p(95)"] / 1000,
        "p99_s": metrics["http_req_duration"]["p(99)"] / 1000,
        "achieved_rate": count / seconds,  # k6 sends no intended start: count what arrived
        "dropped_iterations": dropped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-k6", action="store_true", help="skip (c), and do not build k6")
    args = parser.parse_args()
    binary = build_server()
    k6_bin = None if args.no_k6 else find_k6(install=True)
    with tempfile.TemporaryDirectory(prefix="doorbuster-loadgen-") as tmp:
        work = Path(tmp)
        a = throughput(binary, work, args.users, args.seconds, args.rounds)
        b = stall(binary, work, rate=STALL_RATE, seconds=10, stall_at=5, stall_for=STALL_S)
        c = k6(k6_bin, binary, work, rate=STALL_RATE, seconds=10, stall_at=5, stall_for=STALL_S)
    print(f"\n(a) throughput, {a['users']} users flat out for {a['seconds']:g}s, generator on one core:")
    for o, p, w in zip(a["ours_rps"], a["plain_rps"], a["wrk_rps"], strict=True):
        print(
            f"    doorbuster shoppers {o:8.0f} req/s   plain FastHttpUser {p:8.0f} req/s   ratio {o / p:.3f}"
            f"   | ceiling: wrk {w:8.0f} req/s (shoppers {o / w:.1%} of it, plain {p / w:.1%})"
        )
    print(f"    median ratio {a['ratio']:.3f} (target >= {THROUGHPUT_TARGET:g})")
    o = b["ours"]
    print(f"\n(b) {b['rate']:.0f} arrivals/s for {b['seconds']:.0f}s with a {b['stall_s']}s stall:")
    print(
        f"    true p99 (the bench's schedule -> the endpoint's answer): {o['true_p99_s']:.3f}s, "
        f"true p95 {o['true_p95_s']:.3f}s; {o['scheduled']} scheduled, {o['sent']} received, "
        f"{o['unscheduled']} beyond the schedule; first arrival {o['first_late_s'] * 1000:.1f} ms after its time"
    )
    print(f"    doorbuster open model p99: {o['p99_locust_s']:.3f}s in Locust's stats, {o['p99_log_s']:.3f}s in its log"
          f"  -> {o['p99_log_s'] / o['true_p99_s']:.3f} of true (target within {P99_TOLERANCE:.0%}); "
          f"p95 {o['p95_log_s']:.3f}s")  # fmt: skip
    print(f"    achieved arrival rate {o['achieved_rate']:.1f}/s = {o['achieved_rate'] / b['rate']:.1%} of set "
          f"({o['sent']} sent; target >= 99%)")  # fmt: skip
    for p in b["plain"]:
        print(f"    plain closed-loop Locust, {p['users']} users paced to {b['rate']:.0f}/s: p99 {p['p99_s']:.3f}s "
              f"(true / {o['true_p99_s'] / max(p['p99_s'], 1e-6):.1f}), p95 {p['p95_s']:.3f}s "
              f"(true / {o['true_p95_s'] / max(p['p95_s'], 1e-6):.1f}); sent {p['sent']} "
              f"({p['achieved_rate'] / b['rate']:.1%} of the rate)")  # fmt: skip
    if c is None:
        print("\n(c) skipped (--no-k6)")
    else:
        print(f"\n(c) k6 constant-arrival-rate, same stall: p99 {c['p99_s']:.3f}s "
              f"({c['p99_s'] / o['true_p99_s']:.3f} of the true p99 above), p95 {c['p95_s']:.3f}s; "
              f"achieved {c['achieved_rate']:.1f}/s ({c['achieved_rate'] / b['rate']:.1%}), "
              f"dropped iterations {c['dropped_iterations']}")  # fmt: skip
    if args.json:
        print(json.dumps({"a": a, "b": b, "c": c}, indent=2))
    return report(
        [
            Target(
                "(a) doorbuster shoppers / plain FastHttpUser, req/s (median ratio)",
                a["ratio"],
                ">=",
                THROUGHPUT_TARGET,
            ),
            Target(
                "(b) open-model p99 / true p99", o["p99_log_s"] / o["true_p99_s"], ">=", 1 - P99_TOLERANCE
            ),
            Target(
                "(b) open-model p99 / true p99", o["p99_log_s"] / o["true_p99_s"], "<=", 1 + P99_TOLERANCE
            ),
            Target("(b) achieved / set arrival rate", o["achieved_rate"] / b["rate"], ">=", 0.99),
            Target("(b) requests beyond the schedule", o["unscheduled"], "<=", 0),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
