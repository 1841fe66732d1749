"""Soak: the Black Friday load, run after run for 20 minutes; memory of every process, complete results.

    .venv/bin/python bench/soak.py                 # 20 minutes and a bit
    .venv/bin/python bench/soak.py --minutes 8     # a shorter look (two runs)

It starts its own stack (ports from 27000, Toxiproxy API 27474) and runs ``doorbuster run
black-friday`` (its real stages, faults and drain) again and again on it until the minutes
are used up, each run into its own directory.  It samples the memory of every process of the
stack every 15 s, and compares each process at the end of the first run (warm-up: one whole
Black Friday, so pools, caches and heaps have seen the peak and both faults) with the end of
the last run: the same point of the same load, so what is left is growth, not a high-water
mark.  Target: under 10 % for every process.  Resident memory is the figure held to it; the
anonymous part (without pages mapped from files, which the kernel can drop) is shown beside
it.  It then checks every run's result files: every arrival in the request log, a summary
with verdicts, a report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from stack_bench import rss_bytes

from harness.scenario import load_scenario
from harness.topology import Topology

ROOT = Path(__file__).resolve().parent.parent


def snapshot(state: Path) -> dict[str, tuple[int, int]]:
    """Each process of the stack (and Locust): resident and anonymous bytes."""
    try:
        record = json.loads((state / "supervisor.json").read_text())
    except (OSError, ValueError):
        return {}
    pids = {name: int(info["pid"]) for name, info in record["processes"].items()}
    try:
        for i, pid in enumerate(json.loads((state / "load.json").read_text())["pids"]):
            pids[f"locust-{i}"] = int(pid)
    except (OSError, ValueError, KeyError):
        pass
    return {name: (rss_bytes(pid), rss_bytes(pid, anonymous=True)) for name, pid in pids.items()}


def head_series(state: Path) -> int | None:
    """How many series Prometheus holds in its head block: a label that grows without bound
    (an order id, a URL) shows up here."""
    try:
        topology = Topology.from_json((state / "stack.json").read_text())
        text = requests.get(f"{topology.prometheus.url}/metrics", timeout=5).text
    except (OSError, ValueError, requests.RequestException):
        return None
    for line in text.splitlines():
        if line.startswith("prometheus_tsdb_head_series "):
            return int(float(line.split()[1]))
    return None


def check_run(out: Path) -> tuple[bool, str]:
    """Whether a run's result files are complete, and a line saying so."""
    files = ["summary.json", "report.html", "requests.jsonl", "chaos.json", "series.json", "locust_stats.csv",
             "locust.html", "latency.png", "panel-pool.png"]  # fmt: skip
    missing = [f for f in files if not (out / f).exists() or (out / f).stat().st_size == 0]
    if missing:
        return False, f"{out.name}: MISSING {', '.join(missing)}"
    scenario, _ = load_scenario(str(out / "scenario.json"))
    expected = sum(s.rate * s.duration for s in scenario.load.stages)
    rows = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    arrivals = {
        lane: sum(1 for r in rows if r[2] == lane and r[3] == "checkout" and r[5] == 0)
        for lane in ("sync", "async")
    }
    summary = json.loads((out / "summary.json").read_text())
    passed = sum(v["passed"] for v in summary["verdicts"])
    lost = summary["lanes"]["async"]["orders"].get("lost")
    # Arrivals are drawn per stage; each stage boundary may round one either way.
    complete = all(abs(a - expected) <= len(scenario.load.stages) for a in arrivals.values())
    return complete, (
        f"{out.name}: files complete; arrivals logged {arrivals} of {expected:.0f} per lane; "
        f"verdicts {passed}/{len(summary['verdicts'])} passed; async orders lost: {lost}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=20, help="start runs until this much time has passed"
    )
    parser.add_argument("--scenario", default="black-friday")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="doorbuster-soak-"))
    state = work / "state"
    cli = [sys.executable, "-m", "harness.cli", "--state-dir", str(state)]
    subprocess.run([*cli, "up", "--base-port", "27000", "--toxiproxy-port", "27474"], check=True, cwd=ROOT)
    samples: list[tuple[float, dict[str, tuple[int, int]]]] = []
    ends: list[tuple[Path, int, dict[str, tuple[int, int]]]] = []  # each run: dir, exit code, memory
    series: list[int | None] = []  # Prometheus's head series at the end of each run
    started = time.time()
    try:
        while time.time() - started < args.minutes * 60:
            out = work / f"run-{len(ends) + 1}"
            run = subprocess.Popen(
                [*cli, "run", args.scenario, "--out", str(out)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            while run.poll() is None:
                samples.append((time.time() - started, snapshot(state)))
                time.sleep(15)
            ends.append((out, run.returncode, snapshot(state)))
            series.append(head_series(state))
            print(f"{out.name} ended after {(time.time() - started) / 60:.1f} min, exit {run.returncode}")
    finally:
        subprocess.run([*cli, "down"], cwd=ROOT, capture_output=True)
    (work / "soak-memory.json").write_text(json.dumps([{"t": t, "memory": s} for t, s in samples]))
    if len(ends) < 2:
        print("soak: fewer than two runs, nothing to compare; give it more --minutes")
        return 1
    first, warm, end = samples[0][1], ends[0][2], ends[-1][2]
    print(f"\nsoak: {len(ends)} {args.scenario} runs back to back in {(time.time() - started) / 60:.1f} min; "
          f"memory at the end of run 1 (after warm-up) and of run {len(ends)}\n")  # fmt: skip
    print(
        f"{'process':<28} {'at start':>9} {'after warm-up':>14} {'at end':>9} {'growth':>8} {'anon growth':>12}"
    )
    worst = 0.0
    for name in sorted(end):
        if not warm.get(name, (0, 0))[1]:
            continue
        growth, anon = ((end[name][i] - warm[name][i]) / warm[name][i] for i in (0, 1))
        # Locust is the load generator, not the system under test: shown, not held to the target.
        if not name.startswith("locust"):
            worst = max(worst, growth)
        print(f"{name:<28} {first.get(name, (0, 0))[0] / 2**20:>8.1f}M {warm[name][0] / 2**20:>13.1f}M "
              f"{end[name][0] / 2**20:>8.1f}M {growth:>7.1%} {anon:>11.1%}")  # fmt: skip
    total = {
        key: sum(rss for rss, _ in sizes.values()) / 2**20 for key, sizes in (("warm", warm), ("end", end))
    }
    print(f"{'all processes':<28} {'':>9} {total['warm']:>13.1f}M {total['end']:>8.1f}M "
          f"{(total['end'] - total['warm']) / total['warm']:>7.1%}")  # fmt: skip
    print(f"Prometheus head series at the end of each run: {', '.join(str(n) for n in series)}")
    print(f"\nlargest growth of a stack process after warm-up: {worst:.1%} (target under 10%)")
    print(f"every sample: {work / 'soak-memory.json'}\n")
    results = [check_run(out) if code == 0 or (out / "summary.json").exists() else (False, f"{out.name}: exit {code}")
               for out, code, _ in ends]  # fmt: skip
    for _, line in results:
        print(line)
    print(f"(run directories kept in {work})")
    return 0 if worst < 0.10 and all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
