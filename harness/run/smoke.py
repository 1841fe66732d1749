"""A short side-by-side comparison of both lanes: the main job until scenarios exist.

It sends the same small batch of orders to each lane at baseline, then again while email is
3 s slow on both lanes (the toxic is removed in ``finally``), then waits, bounded, for the
async lane to fulfil every order it accepted.  All traffic goes to the topology's loopback
addresses; every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.faults.chaos import Chaos
from harness.faults.leases import FaultLease
from model.faults import FaultSpec
from model.topology import LANES, Topology

__all__ = ["PhaseResult", "SmokeResult", "run_smoke", "send_orders"]


@dataclass(frozen=True, kw_only=True)
class PhaseResult:
    lane: str
    phase: str
    statuses: tuple[int, ...]
    latencies_s: tuple[float, ...]
    order_ids: tuple[str, ...]

    @property
    def ok(self) -> int:
        return sum(1 for s in self.statuses if s in (200, 202))

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "phase": self.phase,
            "requests": len(self.statuses),
            "ok": self.ok,
            "statuses": sorted(set(self.statuses)),
            "p50_s": round(self.percentile(0.5), 4),
            "p95_s": round(self.percentile(0.95), 4),
            "max_s": round(max(self.latencies_s, default=float("nan")), 4),
            "mean_s": round(statistics.fmean(self.latencies_s), 4) if self.latencies_s else None,
        }


@dataclass(frozen=True, kw_only=True)
class SmokeResult:
    phases: tuple[PhaseResult, ...]
    async_accepted: int
    async_fulfilled: int
    fulfil_wait_s: float
    fault: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "phases": [p.as_json() for p in self.phases],
            "fault": self.fault,
            "async_orders": {
                "accepted": self.async_accepted,
                "fulfilled": self.async_fulfilled,
                "fulfil_wait_s": round(self.fulfil_wait_s, 2),
            },
        }


async def send_orders(
    base_url: str, count: int, concurrency: int, *, timeout_s: float = 60.0
) -> tuple[list[int], list[float], list[str]]:
    """POST ``count`` orders, at most ``concurrency`` at once; returns statuses, latencies, ids."""
    statuses: list[int] = []
    latencies: list[float] = []
    ids: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(i: int) -> None:
            body = {"customer_id": f"smoke-{i}", "items": [{"sku": "tv-55", "qty": 1}]}
            async with gate:
                started = time.perf_counter()
                try:
                    async with session.post(f"{base_url}/orders", json=body) as response:
                        data = await response.json(content_type=None)
                        statuses.append(response.status)
                        if response.status in (200, 202):
                            ids.append(str(data["order_id"]))
                except (TimeoutError, aiohttp.ClientError):
                    statuses.append(0)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one(i) for i in range(count)))
    return statuses, latencies, ids


async def wait_fulfilled(base_url: str, order_ids: list[str], timeout_s: float) -> int:
    """Poll each order until fulfilled (or failed), bounded by ``timeout_s``; count fulfilled."""
    deadline = time.monotonic() + timeout_s
    remaining = set(order_ids)
    fulfilled = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while remaining and time.monotonic() < deadline:
            for order_id in list(remaining):
                try:
                    async with session.get(f"{base_url}/orders/{order_id}") as response:
                        data = await response.json(content_type=None)
                except (TimeoutError, aiohttp.ClientError):
                    continue
                if data.get("status") in ("fulfilled", "failed"):
                    remaining.discard(order_id)
                    fulfilled += data["status"] == "fulfilled"
            if remaining:
                await asyncio.sleep(0.5)
    return fulfilled


@contextmanager
def fault(chaos: Chaos, spec: FaultSpec, lease: FaultLease | None = None) -> Iterator[None]:
    """Apply a fault for the duration of a block; it is removed even on error or Ctrl-C, and
    held by ``lease`` meanwhile (if this process is killed, the next command removes it)."""
    if lease is not None:
        lease.hold(spec.lanes, spec.dependency, spec.toxic_name)
    try:
        chaos.add(spec)
        yield
    finally:
        chaos.remove(spec.dependency, spec.lanes, spec.toxic_name)
        if lease is not None:
            lease.release(spec.lanes, spec.dependency, spec.toxic_name)


async def _phase(topology: Topology, phase: str, orders: int, concurrency: int) -> list[PhaseResult]:
    results = await asyncio.gather(
        *(send_orders(topology.order_service(lane).url, orders, concurrency) for lane in LANES)
    )
    return [
        PhaseResult(
            lane=lane,
            phase=phase,
            statuses=tuple(statuses),
            latencies_s=tuple(latencies),
            order_ids=tuple(ids),
        )
        for lane, (statuses, latencies, ids) in zip(LANES, results, strict=True)
    ]


def run_smoke(
    topology: Topology,
    *,
    orders: int = 24,
    concurrency: int = 8,
    email_latency_ms: int = 3000,
    fulfil_timeout_s: float = 120.0,
    lease: FaultLease | None = None,
) -> SmokeResult:
    chaos = Chaos(topology)
    phases = asyncio.run(_phase(topology, "baseline", orders, concurrency))
    spec = FaultSpec(dependency="email", type="latency", attributes={"latency": email_latency_ms})
    with fault(chaos, spec, lease):
        phases += asyncio.run(_phase(topology, f"email +{email_latency_ms}ms", orders, concurrency))
    accepted = [oid for p in phases if p.lane == "async" for oid in p.order_ids]
    started = time.monotonic()
    fulfilled = asyncio.run(wait_fulfilled(topology.order_service("async").url, accepted, fulfil_timeout_s))
    return SmokeResult(
        phases=tuple(phases),
        async_accepted=len(accepted),
        async_fulfilled=fulfilled,
        fulfil_wait_s=time.monotonic() - started,
        fault={"dependency": "email", "type": "latency", "latency_ms": email_latency_ms},
    )
