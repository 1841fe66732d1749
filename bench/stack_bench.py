"""Benchmark of the paired target stack, at the seed's real latencies, in one run.

    .venv/bin/python bench/stack_bench.py            # or: make bench

It starts its own stack (ports from 26000, Toxiproxy API on 26474, its own state directory),
measures, prints, and stops it:

1. seconds for ``doorbuster up`` to be healthy, and the resident memory of every process;
2. Toxiproxy's added latency per hop: the same request straight to a service and through its
   proxy, side by side;
3. the sync lane's saturation throughput against Little's law (threads / chain latency);
4. the async lane's 202 throughput and p99 at rising open-model arrival rates, with the sync
   lane's answer to the same rates beside it.

All traffic goes to 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from targets_check import Target, report

from harness.analysis.estimates import percentile
from harness.stack.control import Stack
from harness.stack.state import StateDir
from model.settings import PortSettings, StackSettings
from model.topology import Topology

ORDER = {"customer_id": "bench", "items": [{"sku": "tv-55", "qty": 1}]}


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants."""
    return memory_bytes(pid)[0]


def memory_bytes(pid: int) -> tuple[int, int]:
    """Resident memory of ``pid`` and all its descendants, and the anonymous part of it: without
    the pages mapped from files (the binary, libraries, memory-mapped data), which the kernel
    can drop and read again, so only the heap and stacks a leak would grow."""
    resident = anonymous = 0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    page = os.sysconf("SC_PAGE_SIZE")
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as fh:
                fields = [int(f) for f in fh.read().split()]
            resident += fields[1] * page
            anonymous += (fields[1] - fields[2]) * page
        except OSError:
            pass
        todo.extend(children.get(current, []))
    return resident, anonymous


async def hop_latency(topology: Topology, samples: int) -> dict[str, float]:
    """Median and p99 of GET /health on the sync email service, direct and through Toxiproxy."""
    direct = f"{topology.endpoint('downstream-sync-email').url}/health"
    proxied = f"http://{topology.proxy('sync', 'email').listen}/health"
    results: dict[str, list[float]] = {"direct": [], "proxied": []}
    async with aiohttp.ClientSession() as session:
        for i in range(samples * 2):  # interleaved, so drift hits both alike
            name, url = ("direct", direct) if i % 2 == 0 else ("proxied", proxied)
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            results[name].append(time.perf_counter() - started)
    d, p = results["direct"], results["proxied"]
    return {
        "direct_p50_ms": statistics.median(d) * 1000,
        "proxied_p50_ms": statistics.median(p) * 1000,
        "added_p50_ms": (statistics.median(p) - statistics.median(d)) * 1000,
        "direct_p99_ms": percentile(d, 0.99) * 1000,
        "proxied_p99_ms": percentile(p, 0.99) * 1000,
        "added_p99_ms": (percentile(p, 0.99) - percentile(d, 0.99)) * 1000,
    }


async def closed_loop(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Keep ``concurrency`` orders in flight for ``seconds``; completed orders per second."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    statuses: list[int] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def user() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                async with session.post(f"{url}/orders", json=ORDER) as response:
                    await response.read()
                    statuses.append(response.status)
                if response.status == 200:
                    latencies.append(time.perf_counter() - started)

        started = time.monotonic()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return {
        "completed": len(latencies),
        "throughput_rps": len(latencies) / elapsed,
        "mean_latency_s": statistics.fmean(latencies) if latencies else float("nan"),
        "non_200": len(statuses) - len(latencies),
    }


async def open_loop(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Arrivals at ``rate``/s for ``seconds`` whatever the answers; latency from intended start."""
    count = int(rate * seconds)
    latencies: list[float] = []
    statuses: list[int] = []
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.perf_counter() + 0.05

        async def one(i: int) -> None:
            intended = start + i / rate
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.post(f"{url}/orders", json=ORDER) as response:
                    await response.read()
                    statuses.append(response.status)
            except (TimeoutError, aiohttp.ClientError):
                statuses.append(0)
            latencies.append(time.perf_counter() - intended)

        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - start
    good = [s for s in statuses if s in (200, 202)]
    return {
        "rate": rate,
        "sent": count,
        "ok": len(good),
        "goodput_rps": len(good) / elapsed,
        "p50_s": percentile(latencies, 0.5),
        "p99_s": percentile(latencies, 0.99),
        "errors": count - len(good),
    }


async def drain(topology: Topology, timeout_s: float) -> float:
    """Seconds until the async lane has no accepted-but-unfinished order (bounded)."""
    url = f"{topology.order_service('async').url}/ledger"
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - started < timeout_s:
            async with session.get(url) as response:
                ledger = await response.json()
            if ledger["orders"]["accepted"] == 0 and ledger["outbox_backlog"] == 0:
                break
            await asyncio.sleep(0.5)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-port", type=int, default=26000)
    parser.add_argument("--toxiproxy-port", type=int, default=26474)
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="10,25,50,100,150")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    settings = StackSettings(ports=PortSettings(base=args.base_port, toxiproxy_api=args.toxiproxy_port))
    state = StateDir(Path(tempfile.mkdtemp(prefix="doorbuster-bench-")))
    stack = Stack(state)
    figures: dict[str, Any] = {}
    started = time.monotonic()
    topology = stack.up(settings, timeout_s=120)
    figures["up_healthy_s"] = time.monotonic() - started
    try:
        record = state.read_supervisor() or {}
        pids = {name: info["pid"] for name, info in record.get("processes", {}).items()}
        memory = {name: rss_bytes(pid) for name, pid in pids.items()}
        memory["supervisor"] = rss_bytes(int(record["pid"])) - sum(memory.values())
        figures["memory_mib"] = {k: round(v / 2**20, 1) for k, v in memory.items()}
        figures["memory_total_mib"] = round(sum(memory.values()) / 2**20, 1)

        figures["hop"] = asyncio.run(hop_latency(topology, samples=1000))

        threads = settings.sync.threads
        chain_s = sum(d.latency_ms for d in settings.chain.values()) / 1000
        sat = asyncio.run(closed_loop(topology.order_service("sync").url, threads * 2, 30))
        predicted = threads / chain_s
        figures["sync_saturation"] = {
            **sat,
            "threads": threads,
            "chain_s": chain_s,
            "predicted_rps": predicted,
            "measured_over_predicted": sat["throughput_rps"] / predicted,
            # Little's law from the client's side: in flight / time in system.
            "client_littles_law_rps": threads * 2 / sat["mean_latency_s"],
        }
        time.sleep(3)

        steps = []
        for rate in (float(r) for r in args.rates.split(",")):
            async_step, sync_step = asyncio.run(_both(topology, rate, args.step_seconds))
            steps.append({"rate": rate, "async": async_step, "sync": sync_step})
            time.sleep(2)
        figures["rising_load"] = steps
        figures["async_drain_s"] = asyncio.run(drain(topology, 120))
    finally:
        stack.down()

    _print(figures)
    if args.json:
        print(json.dumps(figures, indent=2))
    return report(stack_targets(figures))


def stack_targets(f: dict[str, Any]) -> list[Target]:
    """What the stack must be for its runs to mean anything: quick to start and small enough for
    a laptop; a Toxiproxy hop negligible beside the 1.85 s chain; a sync lane bounded by its
    pool as Little's law says; an async 202 that stays fast and error-free at every rate."""
    s = f["sync_saturation"]
    targets = [
        Target("doorbuster up until healthy", f["up_healthy_s"], "<", 60, " s"),
        Target("memory of the whole stack", f["memory_total_mib"], "<", 2048, " MiB"),
        Target("Toxiproxy's added p99 per hop", f["hop"]["added_p99_ms"], "<", 1, " ms"),
        Target("sync saturation, measured / Little's law", s["measured_over_predicted"], ">=", 0.9),
        Target("sync saturation, measured / Little's law", s["measured_over_predicted"], "<=", 1.05),
    ]
    for step in f["rising_load"]:
        a = step["async"]
        targets.append(Target(f"async 202 p99 at {step['rate']:g}/s", a["p99_s"], "<", 1, " s"))
        targets.append(Target(f"async errors at {step['rate']:g}/s", a["errors"], "<=", 0))
    targets.append(Target("async backlog drained after the last step", f["async_drain_s"], "<", 120, " s"))
    return targets


async def _both(topology: Topology, rate: float, seconds: float) -> tuple[dict[str, Any], ...]:
    return tuple(
        await asyncio.gather(
            open_loop(topology.order_service("async").url, rate, seconds),
            open_loop(topology.order_service("sync").url, rate, seconds),
        )
    )


def _print(f: dict[str, Any]) -> None:
    print(f"\ndoorbuster up -> healthy: {f['up_healthy_s']:.1f} s")
    print(f"stack memory (RSS): {f['memory_total_mib']:.0f} MiB in {len(f['memory_mib'])} process trees")
    top = sorted(f["memory_mib"].items(), key=lambda kv: -kv[1])[:4]
    print("  largest: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in top))
    h = f["hop"]
    print(
        f"\nToxiproxy hop (GET /health, keep-alive, 1000 each, interleaved):\n"
        f"  direct p50 {h['direct_p50_ms']:.2f} ms  proxied p50 {h['proxied_p50_ms']:.2f} ms"
        f"  added {h['added_p50_ms']:.2f} ms\n"
        f"  direct p99 {h['direct_p99_ms']:.2f} ms  proxied p99 {h['proxied_p99_ms']:.2f} ms"
        f"  added {h['added_p99_ms']:.2f} ms"
    )
    s = f["sync_saturation"]
    print(
        f"\nsync lane saturation ({s['threads']} threads, {2 * s['threads']} orders in flight, 30 s):\n"
        f"  measured {s['throughput_rps']:.2f} orders/s, Little's law {s['threads']} / "
        f"{s['chain_s']:.2f} s = {s['predicted_rps']:.2f} orders/s, "
        f"measured / predicted = {s['measured_over_predicted']:.3f}\n"
        f"  client side: {2 * s['threads']} in flight / {s['mean_latency_s']:.3f} s per order "
        f"(queueing included) = {s['client_littles_law_rps']:.2f} orders/s; non-200: {s['non_200']}"
    )
    print("\nrising open-model load, both lanes at once (latency from intended start):")
    print(f"  {'rate/s':>7} | {'async ok/s':>10} {'202 p50':>8} {'202 p99':>8} {'err':>5} | "
          f"{'sync ok/s':>9} {'p50':>7} {'p99':>7} {'err':>5}")  # fmt: skip
    for step in f["rising_load"]:
        a, y = step["async"], step["sync"]
        print(
            f"  {step['rate']:>7.0f} | {a['goodput_rps']:>10.1f} {a['p50_s']:>7.3f}s {a['p99_s']:>7.3f}s "
            f"{a['errors']:>5} | {y['goodput_rps']:>9.1f} {y['p50_s']:>6.2f}s {y['p99_s']:>6.2f}s "
            f"{y['errors']:>5}"
        )
    print(f"\nasync backlog drained {f['async_drain_s']:.1f} s after the last step")


if __name__ == "__main__":
    sys.exit(main())
