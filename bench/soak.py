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
it.  Prometheus is the exception, held instead by its live heap after a forced collection
and by its head series: its resident memory also holds the heap the Go runtime freed and
keeps (measured: live heap flat, resident memory up about 3 MiB a run), and a label growing
without bound would show in its series.  Its resident memory is shown all the same.  Locust
is shown and not held: it is the load generator.  The soak then checks every run's result
files: every arrival in the request log, a summary with verdicts, a report.
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
from stack_bench import memory_bytes

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
    return {name: memory_bytes(pid) for name, pid in pids.items()}


def prometheus_facts(state: Path) -> dict[str, int]:
    """Prometheus's head series (a label that grows without bound, an order id or a URL, shows
    up here) and its live heap: the Go heap still in use right after a collection, which
    its ``/debug/pprof/heap?gc=1`` forces.  Its resident memory also holds heap the Go runtime
    has freed but keeps for reuse, so that alone can not tell a leak from churn."""
    facts: dict[str, int] = {}
    try:
        url = Topology.from_json((state / "stack.json").read_text()).prometheus.url
        heap = requests.get(f"{url}/debug/pprof/heap", params={"gc": 1, "debug": 1}, timeout=30).text
        metrics = requests.get(f"{url}/metrics", timeout=5).text
    except (OSError, ValueError, requests.RequestException):
        return facts
    for line in heap.splitlines():
        if line.startswith("# HeapAlloc = "):
            facts["live_heap"] = int(line.split("=")[1])
    for line in metrics.splitlines():
        if line.startswith("prometheus_tsdb_head_series "):
            facts["head_series"] = int(float(line.split()[1]))
    return facts


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
    prometheus: list[dict[str, int]] = []  # its head series and live heap at the end of each run
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
            prometheus.append(prometheus_facts(state))
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
    worst, worst_name = 0.0, ""
    for name in sorted(end):
        if not warm.get(name, (0, 0))[1]:
            continue
        growth, anon = ((end[name][i] - warm[name][i]) / warm[name][i] for i in (0, 1))
        # Locust is the load generator, not the system under test: shown, not held to the target.
        # Prometheus is held by its live heap and series (below); its resident memory is shown.
        if not name.startswith("locust") and name != "prometheus" and growth >= worst:
            worst, worst_name = growth, name
        print(f"{name:<28} {first.get(name, (0, 0))[0] / 2**20:>8.1f}M {warm[name][0] / 2**20:>13.1f}M "
              f"{end[name][0] / 2**20:>8.1f}M {growth:>7.1%} {anon:>11.1%}")  # fmt: skip
    total = {
        key: sum(rss for rss, _ in sizes.values()) / 2**20 for key, sizes in (("warm", warm), ("end", end))
    }
    print(f"{'all processes':<28} {'':>9} {total['warm']:>13.1f}M {total['end']:>8.1f}M "
          f"{(total['end'] - total['warm']) / total['warm']:>7.1%}")  # fmt: skip
    heap = [p.get("live_heap", 0) for p in prometheus]
    series = [p.get("head_series", 0) for p in prometheus]
    if heap[0] and heap[-1] and series[0] and series[-1]:
        print("\nPrometheus at the end of each run, after a forced collection: live heap "
              f"{', '.join(f'{h / 2**20:.1f}M' for h in heap)}; head series {', '.join(map(str, series))}")  # fmt: skip
        for fact, values in (("live heap", heap), ("head series", series)):
            growth = (values[-1] - values[0]) / values[0]
            if growth >= worst:
                worst, worst_name = growth, f"prometheus ({fact})"
    else:
        print("\nPrometheus's live heap or head series could not be read: not held to the target")
        worst, worst_name = float("inf"), "prometheus (unread)"
    print(f"\nlargest growth after warm-up: {worst:.1%}, {worst_name} (target under 10%)")
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
