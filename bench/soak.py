"""Soak: the Black Friday load for 20 minutes; memory of every process, and complete results.

    .venv/bin/python bench/soak.py                 # 20 minutes and a bit
    .venv/bin/python bench/soak.py --minutes 5     # a shorter look

It starts its own stack (ports from 27000, Toxiproxy API 27474), runs ``doorbuster run
black-friday --duration 20m`` (the same stages and faults, stretched), samples the resident
memory of every process of the stack and of Locust every 30 s, and prints each process's
memory after warm-up (the first two minutes: imports, caches and pools filling) and at the
end, with the growth in between (target: under 10 %). It then checks that the run's result
files are complete: every arrival in the request log, a summary with verdicts, a report.
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

from stack_bench import rss_bytes

from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def snapshot(state: Path) -> dict[str, int]:
    try:
        record = json.loads((state / "supervisor.json").read_text())
    except (OSError, ValueError):
        return {}
    sizes = {name: rss_bytes(int(info["pid"])) for name, info in record["processes"].items()}
    try:
        for i, pid in enumerate(json.loads((state / "load.json").read_text())["pids"]):
            sizes[f"locust-{i}"] = rss_bytes(int(pid))
    except (OSError, ValueError, KeyError):
        pass
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=2, help="minutes before the 'start' sample")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="doorbuster-soak-"))
    state, out = work / "state", work / "run"
    cli = [sys.executable, "-m", "harness.cli", "--state-dir", str(state)]
    subprocess.run([*cli, "up", "--base-port", "27000", "--toxiproxy-port", "27474"], check=True, cwd=ROOT)
    samples: list[tuple[float, dict[str, int]]] = []
    started = time.time()
    try:
        run = subprocess.Popen(
            [*cli, "run", "black-friday", "--duration", f"{args.minutes * 60:g}s", "--out", str(out)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while run.poll() is None:
            samples.append((time.time() - started, snapshot(state)))
            time.sleep(30)
        code = run.returncode
    finally:
        subprocess.run([*cli, "down"], cwd=ROOT, capture_output=True)
    warm = next((s for t, s in samples if t >= args.warmup * 60 and s), samples[0][1])
    first = samples[0][1]
    load_end = [s for t, s in samples if t <= args.minutes * 60 and s]
    end = load_end[-1] if load_end else samples[-1][1]
    print(
        f"\nsoak: black-friday stretched to {args.minutes:g} min, run exit {code}, {len(samples)} samples\n"
    )
    print(f"{'process':<28} {'at start':>10} {'after warm-up':>14} {'at end':>10} {'growth':>8}")
    worst = 0.0
    for name in sorted(end):
        if name not in warm or not warm[name]:
            continue
        growth = (end[name] - warm[name]) / warm[name]
        # Locust is the load generator, not the system under test: shown, not held to the target.
        if not name.startswith("locust"):
            worst = max(worst, growth)
        print(f"{name:<28} {first.get(name, 0) / 2**20:>9.1f}M {warm[name] / 2**20:>13.1f}M "
              f"{end[name] / 2**20:>9.1f}M {growth:>7.1%}")  # fmt: skip
    total = {key: sum(sizes.values()) / 2**20 for key, sizes in (("warm", warm), ("end", end))}
    print(f"{'all processes':<28} {'':>10} {total['warm']:>13.1f}M {total['end']:>9.1f}M "
          f"{(total['end'] - total['warm']) / total['warm']:>7.1%}")  # fmt: skip
    print(f"\nlargest growth of a stack process after warm-up: {worst:.1%} (target under 10%)")
    (out / "soak-memory.json").write_text(json.dumps([{"t": t, "rss": s} for t, s in samples]))
    print(f"every sample: {out / 'soak-memory.json'}")
    scenario, _ = load_scenario(str(out / "scenario.json"))
    expected = sum(s.rate * s.duration for s in scenario.load.stages)
    rows = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    arrivals = {
        lane: sum(1 for r in rows if r[2] == lane and r[3] == "checkout" and r[5] == 0)
        for lane in ("sync", "async")
    }
    summary = json.loads((out / "summary.json").read_text())
    files = ["summary.json", "report.html", "requests.jsonl", "chaos.json", "series.json", "locust_stats.csv",
             "locust.html", "latency.png", "panel-pool.png"]  # fmt: skip
    missing = [f for f in files if not (out / f).exists() or (out / f).stat().st_size == 0]
    print(f"result files: {'complete' if not missing else 'MISSING ' + ', '.join(missing)}; "
          f"arrivals logged {arrivals} of {expected:.0f} per lane; verdicts "
          f"{sum(v['passed'] for v in summary['verdicts'])}/{len(summary['verdicts'])} passed; "
          f"async orders {summary['lanes']['async']['orders']}")  # fmt: skip
    print(f"(run directory kept: {out})")
    # Arrivals are drawn per stage; each stage boundary may round one either way.
    complete = all(abs(a - expected) <= len(scenario.load.stages) for a in arrivals.values())
    return 0 if not missing and worst < 0.10 and complete else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
