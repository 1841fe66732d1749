"""Soak: the Black Friday load, run after run for 20 minutes; memory of every process, complete results.

    .venv/bin/python bench/soak.py                 # 20 minutes and a bit
    .venv/bin/python bench/soak.py --minutes 10    # a shorter look (three runs)

It starts its own stack (ports from 27000, Toxiproxy API 27474) and runs ``doorbuster run
black-friday`` (its real stages, faults and drain) again and again on it until the minutes
are used up, each run into its own directory.  It samples the memory of every process of the
stack every 15 s (about 19 samples a run).  The first run is the warm-up (one whole Black
Friday, so pools, caches and heaps have seen the peak and both faults); each process's median
over the second run is compared with its median over the last: the same whole load twice, so
what is left is growth, not a high-water mark.  Medians over whole runs, not one sample at a
run's end, because a Go process's resident memory is a sawtooth: its heap grows to twice
what is live before each collection and the runtime hands freed pages back to the kernel
minutes later, so Toxiproxy moved between 44 and 60 MiB within single runs of one soak, more
than the target, with no trend.  The end-of-run figures are printed too.
Target: under 10 % for every process of the system under test (order services,
downstream services, workers), the broker and Toxiproxy.  Resident memory is the figure held
to it; the anonymous part (without pages mapped from files, which the kernel can drop) is
shown beside it.  Two processes are shown and not held.  Locust is the load generator.
Prometheus keeps the block it is writing, every sample of the last two to three hours, in
memory until it compacts that block to disk (its storage documentation: "The current block
for incoming samples is kept in memory"), so in a soak shorter than that its memory grows
with every sample it takes, by design.  What doorbuster controls there is how many series it
sends, and a label that grows without bound (an order id, a URL) would show as head series:
those are held to the target.  Its live heap after a forced collection and its head chunks
are shown for each run, with the heap that each added chunk costs, so growth that is not the
head's would stand out.  The soak then checks every run's result
files: every arrival in the request log, a summary with verdicts, a report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from stack_bench import memory_bytes
from targets_check import Target, report

from harness.config.scenarios import load_scenario
from harness.metrics.scrape import MetricMissing, scrape
from harness.records.schema import read_requests
from harness.stack.state import StateDir
from model.errors import MetricsUnreadable
from model.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
HEAD_FACTS = ("head_series", "head_chunks")  # prometheus_tsdb_<fact>: the head block's size


def snapshot(state: Path) -> dict[str, tuple[int, int]]:
    """Each process of the stack (and Locust): resident and anonymous bytes."""
    try:
        record = json.loads((state / "supervisor.json").read_text())
    except (OSError, ValueError):
        return {}
    pids = {name: int(info["pid"]) for name, info in record["processes"].items()}
    for i, (pid, _) in enumerate(StateDir(state).read_load_pids()):
        pids[f"locust-{i}"] = pid
    return {name: memory_bytes(pid) for name, pid in pids.items()}


def prometheus_facts(state: Path) -> dict[str, int]:
    """Prometheus's head series (a label that grows without bound, an order id or a URL, shows
    up here), its head chunks (the samples it holds in memory) and its live heap: the Go heap
    still in use right after a collection, which its ``/debug/pprof/heap?gc=1`` forces.  Its
    resident memory also holds heap the Go runtime has freed but keeps for reuse."""
    facts: dict[str, int] = {}
    try:
        topology = Topology.from_json((state / "stack.json").read_text())
        url = topology.prometheus.url
        heap = requests.get(f"{url}/debug/pprof/heap", params={"gc": 1, "debug": 1}, timeout=30).text
        page = scrape(topology.process("prometheus"), only=[f"prometheus_tsdb_{n}" for n in HEAD_FACTS])
    except (OSError, ValueError, requests.RequestException, MetricsUnreadable):
        return facts
    for line in heap.splitlines():
        if line.startswith("# HeapAlloc = "):
            facts["live_heap"] = int(line.split("=")[1])
    for name in HEAD_FACTS:
        with contextlib.suppress(MetricMissing):  # an older Prometheus: the figure is left out
            facts[name] = int(page.value(f"prometheus_tsdb_{name}"))
    return facts


def report_prometheus(prometheus: list[dict[str, int]], runs: int) -> float | None:
    """Print Prometheus's live heap, head chunks and series after each run; return how much
    its head series grew from the first run to the last (None when a run's were not read)."""
    heap, chunks, series = (
        [p.get(key, 0) for p in prometheus] for key in ("live_heap", "head_chunks", "head_series")
    )
    if len(prometheus) != runs or not all(series) or not all(chunks) or not all(heap):
        print("\nPrometheus's head series could not be read after every run: the soak can not vouch for them")
        return None
    print(f"\nPrometheus at the end of each run (live heap after a forced collection):\n"
          f"{'run':>5} {'live heap':>10} {'head chunks':>12} {'head series':>12} {'heap per added chunk':>21}")  # fmt: skip
    for i, (h, c, n) in enumerate(zip(heap, chunks, series, strict=True)):
        added = f"{(h - heap[i - 1]) / (c - chunks[i - 1]):.0f} B" if i and c > chunks[i - 1] else ""
        print(f"{i + 1:>5} {h / 2**20:>9.1f}M {c:>12} {n:>12} {added:>21}")
    print(f"its head holds the last 2-3 h of samples in memory: live heap {(heap[-1] - heap[0]) / heap[0]:+.1%} "
          f"with head chunks {(chunks[-1] - chunks[0]) / chunks[0]:+.1%}; shown, not held. Its series are held.")  # fmt: skip
    return (series[-1] - series[0]) / series[0]


def run_medians(
    samples: list[tuple[float, int, dict[str, tuple[int, int]]]], run: int
) -> dict[str, tuple[int, int]]:
    """Each process's median resident and anonymous bytes over the samples taken during ``run``."""
    during = [memory for _, r, memory in samples if r == run]
    names = {name for memory in during for name in memory}
    return {
        name: (
            int(statistics.median(m[name][0] for m in during if name in m)),
            int(statistics.median(m[name][1] for m in during if name in m)),
        )
        for name in names
    }


def check_run(out: Path) -> tuple[bool, str]:
    """Whether a run's result files are complete, and a line saying so."""
    files = ["summary.json", "report.html", "requests.jsonl", "chaos.json", "series.json", "locust_stats.csv",
             "locust.html", "story-latency.png", "panel-pool.png"]  # fmt: skip
    missing = [f for f in files if not (out / f).exists() or (out / f).stat().st_size == 0]
    if missing:
        return False, f"{out.name}: MISSING {', '.join(missing)}"
    scenario, _ = load_scenario(str(out / "scenario.json"))
    expected = sum(s.rate * s.duration for s in scenario.load.stages)
    records = read_requests(out / "requests.jsonl")
    arrivals = {
        lane: sum(1 for r in records if r.lane == lane and r.kind == "checkout" and r.attempt == 0)
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
    cli = [sys.executable, "-m", "harness.cli.main", "--state-dir", str(state)]
    subprocess.run([*cli, "up", "--base-port", "27000", "--toxiproxy-port", "27474"], check=True, cwd=ROOT)
    samples: list[tuple[float, int, dict[str, tuple[int, int]]]] = []  # time, run, memory
    ends: list[tuple[Path, int, dict[str, tuple[int, int]]]] = []  # each run: dir, exit code, memory
    prometheus: list[dict[str, int]] = []  # its head series, chunks and live heap after each run
    started = time.time()
    try:
        while time.time() - started < args.minutes * 60:
            out = work / f"run-{len(ends) + 1}"
            run = subprocess.Popen(
                [*cli, "run", args.scenario, "--out", str(out)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            while run.poll() is None:
                samples.append((time.time() - started, len(ends) + 1, snapshot(state)))
                time.sleep(15)
            ends.append((out, run.returncode, snapshot(state)))
            prometheus.append(prometheus_facts(state))
            print(f"{out.name} ended after {(time.time() - started) / 60:.1f} min, exit {run.returncode}")
    finally:
        subprocess.run([*cli, "down"], cwd=ROOT, capture_output=True)
    (work / "soak-memory.json").write_text(
        json.dumps([{"t": t, "run": run, "memory": s} for t, run, s in samples])
    )
    if len(ends) < 3:
        print("soak: fewer than three runs (one to warm up, two to compare); give it more --minutes")
        return 1
    last = len(ends)
    first, warm, end = samples[0][2], run_medians(samples, 2), run_medians(samples, last)
    print(f"\nsoak: {last} {args.scenario} runs back to back in {(time.time() - started) / 60:.1f} min; "
          f"each process's median memory over run 2 (run 1 warms up) and over run {last}\n")  # fmt: skip
    print(f"{'process':<28} {'at start':>9} {'run 2':>9} {f'run {last}':>9} {'growth':>8} {'anon growth':>12} "
          f"{'end of run 1 -> ' + str(last):>18}")  # fmt: skip
    worst, worst_name = 0.0, ""
    for name in sorted(end):
        if not warm.get(name, (0, 0))[1] or name not in ends[0][2]:
            continue
        growth, anon = ((end[name][i] - warm[name][i]) / warm[name][i] for i in (0, 1))
        instant = (ends[-1][2][name][0] - ends[0][2][name][0]) / ends[0][2][name][0]
        # Locust (the load generator) and Prometheus (held by its series, below): shown only.
        if not name.startswith("locust") and name != "prometheus" and growth >= worst:
            worst, worst_name = growth, name
        print(f"{name:<28} {first.get(name, (0, 0))[0] / 2**20:>8.1f}M {warm[name][0] / 2**20:>8.1f}M "
              f"{end[name][0] / 2**20:>8.1f}M {growth:>7.1%} {anon:>11.1%} {instant:>18.1%}")  # fmt: skip
    total = {
        key: sum(rss for rss, _ in sizes.values()) / 2**20 for key, sizes in (("warm", warm), ("end", end))
    }
    print(f"{'all processes':<28} {'':>9} {total['warm']:>8.1f}M {total['end']:>8.1f}M "
          f"{(total['end'] - total['warm']) / total['warm']:>7.1%}")  # fmt: skip
    series_growth = report_prometheus(prometheus, len(ends))
    if series_growth is None:
        worst, worst_name = float("inf"), "prometheus (unread)"
    elif series_growth >= worst:
        worst, worst_name = series_growth, "prometheus (head series)"
    print(f"\nlargest growth after warm-up: {worst:.1%}, {worst_name} (target under 10%)")
    print(f"every sample: {work / 'soak-memory.json'}\n")
    results = [check_run(out) if code == 0 or (out / "summary.json").exists() else (False, f"{out.name}: exit {code}")
               for out, code, _ in ends]  # fmt: skip
    for _, line in results:
        print(line)
    print(f"(run directories kept in {work})")
    return report(
        [
            Target(f"largest memory growth after warm-up ({worst_name})", worst * 100, "<", 10, "%"),
            Target(
                "runs whose files and verdicts are complete", sum(ok for ok, _ in results), ">=", len(results)
            ),
        ]
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
