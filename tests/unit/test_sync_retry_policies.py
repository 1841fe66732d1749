"""The sync lane's client under each retry policy, against a real downstream on a loopback
socket (listening where the lane's proxy would): what each policy lets reach the dependency,
and what it refuses, counted on both sides."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from model import metric_names as names
from model.headers import DEADLINE_HEADER
from model.settings import DependencySettings, StackSettings
from model.target_config import TargetConfig, resolve_target_config
from model.topology import Topology
from targets.downstream import SERVICE_KEY, DownstreamService, HttpFaults, build_downstream_app
from targets.metrics import SyncChainMetrics
from targets.random_streams import RandomStreams
from targets.resilience import CallFailed
from targets.sync_lane import BlockingDependencyClient, build_sync_app

TIME_SCALE = 0.1  # the seed's 5 s timeout is 0.5 s, its back-offs 10 and 20 ms
ORDER = {"customer_id": "c-1", "items": [{"sku": "tv-55", "qty": 1}]}


def _settings(sync: dict[str, Any], email: DependencySettings) -> StackSettings:
    return StackSettings.model_validate(
        {
            "time_scale": TIME_SCALE,
            "chain": {"email": email.model_dump()},
            "critical": ["email"],
            "sync": sync,
            "ports": {"base": 24800},
        }
    )


def _order_sync(topology: Topology) -> TargetConfig:
    """The sync order service's configuration (its orders stay in memory: no data dir used)."""
    return resolve_target_config(topology, topology.process("order-sync"), data_dir=Path("."))


@dataclass(frozen=True)
class Email:
    service: DownstreamService
    registry: CollectorRegistry  # the email service's

    def received(self, code: str) -> float:
        labels = {"lane": "sync", "dependency": "email", "code": code}
        return self.registry.get_sample_value(names.DOWNSTREAM_REQUESTS, labels) or 0.0


@asynccontextmanager
async def _email(topology: Topology, latency_ms: float, concurrency: int = 64) -> AsyncIterator[Email]:
    """The email service, listening where the sync lane's email proxy would."""
    registry = CollectorRegistry()
    app = build_downstream_app(
        lane="sync", dependency="email", settings=DependencySettings(latency_ms=latency_ms, spread=0,
        concurrency=concurrency), time_scale=TIME_SCALE, registry=registry, streams=RandomStreams("downstream-sync-email", seed=4),
    )  # fmt: skip
    runner = web.AppRunner(app)
    await runner.setup()
    listen = topology.proxy("sync", "email").listen_endpoint
    await web.TCPSite(runner, listen.host, listen.port).start()
    try:
        yield Email(service=app[SERVICE_KEY], registry=registry)
    finally:
        await runner.cleanup()


def _calls(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"lane": "sync", "dependency": "email", **labels}) or 0.0


# Ten calls to an email service that answers every one with 503: what each policy sends.
# budget: 10% of 10 calls is one retry (no reserve here); token_bucket: 10 tokens pay for the
# first call's two retries; breaker: 4 failures open it, and the other attempts stay home.
FAILING: dict[str, tuple[dict[str, Any], int, dict[str, int]]] = {
    # policy: (sync settings, attempts email receives, attempts refused or retries denied)
    "seed": ({}, 30, {}),
    "none": ({}, 10, {}),
    "full_jitter": ({}, 30, {}),
    "budget": ({"budget": {"min_retries_per_s": 0}}, 11, {"budget": 10}),
    "token_bucket": ({"token_bucket": {"capacity": 10}}, 12, {"token_bucket": 9}),
    "breaker": ({}, 4, {"circuit_open": 9}),
}


@pytest.mark.parametrize("policy", list(FAILING))
async def test_each_policy_sends_a_failing_dependency_what_it_promises(policy: str) -> None:
    retry, sent, refused = FAILING[policy]
    settings = _settings(
        {"retry": {"policy": policy, **retry}, "breaker": {"failure_threshold": 4}},
        DependencySettings(latency_ms=10, spread=0),
    )
    topology = Topology.from_settings(settings)
    registry = CollectorRegistry()
    client = BlockingDependencyClient(
        config=_order_sync(topology),
        metrics=SyncChainMetrics(registry, "sync"),
        streams=RandomStreams("order-sync", seed=3),
    )
    async with _email(topology, latency_ms=10) as email:
        email.service.faults = HttpFaults(error_rate=1.0, error_status=503)
        for i in range(10):
            with pytest.raises(CallFailed):
                await asyncio.to_thread(client.call, "email", {"order_id": f"o{i}"})
        assert email.received("503") == sent
    assert _calls(registry, names.DOWNSTREAM_CALL_ATTEMPTS, outcome="http_5xx") == sent
    assert _calls(registry, names.DOWNSTREAM_CALL_ATTEMPTS, outcome="circuit_open") == refused.get(
        "circuit_open", 0
    )
    for reason in ("budget", "token_bucket"):
        assert _calls(registry, names.DOWNSTREAM_RETRIES_DENIED, reason=reason) == refused.get(reason, 0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_adaptive_throttling_keeps_most_attempts_from_a_dependency_that_accepts_nothing() -> None:
    settings = _settings({"retry": {"policy": "adaptive"}}, DependencySettings(latency_ms=10, spread=0))
    topology = Topology.from_settings(settings)
    registry = CollectorRegistry()
    clock = FakeClock()  # the throttle's 120 s window (12 s here) passes when the test says
    client = BlockingDependencyClient(
        config=_order_sync(topology),
        metrics=SyncChainMetrics(registry, "sync"),
        clock=clock,
        streams=RandomStreams("order-sync", seed=3),
    )
    async with _email(topology, latency_ms=10) as email:
        email.service.faults = HttpFaults(error_rate=1.0, error_status=503)
        for i in range(40):
            with pytest.raises(CallFailed) as failed:
                await asyncio.to_thread(client.call, "email", {"order_id": f"o{i}"})
            assert failed.value.outcome in ("http_5xx", "throttled")
        sent = email.received("503")
        throttled = _throttled(registry)
        # the seed would send 120; after n requests and no accept p = n / (n + 1)
        assert sent == _calls(registry, names.DOWNSTREAM_CALL_ATTEMPTS, outcome="http_5xx")
        assert sent < 20 and throttled >= 35, (sent, throttled)
        email.service.faults = HttpFaults()  # it heals, but the window still holds the failures
        with pytest.raises(CallFailed) as failed:
            for i in range(5):
                await asyncio.to_thread(client.call, "email", {"order_id": f"early{i}"})
        assert failed.value.outcome == "throttled"
        ok_before, throttled_before = email.received("200"), _throttled(registry)
        clock.now = 12.01  # the failures leave the window: every call goes out again
        for i in range(20):
            await asyncio.to_thread(client.call, "email", {"order_id": f"ok{i}"})
        assert email.received("200") - ok_before == 20
        assert _throttled(registry) == throttled_before


def _throttled(registry: CollectorRegistry) -> float:
    return _calls(registry, names.DOWNSTREAM_CALL_ATTEMPTS, outcome="throttled")


async def test_the_deadline_policy_sends_the_remaining_time_and_stops_at_the_orders_deadline() -> None:
    """One slot, held for 400 ms of work: the order's 300 ms deadline caps the attempt and its
    header; the downstream drops the request when the slot frees, without the side effect,
    and no retry starts after the deadline."""
    settings = _settings({"retry": {"policy": "deadline"}}, DependencySettings(latency_ms=4000, spread=0))
    topology = Topology.from_settings(settings)
    registry = CollectorRegistry()
    client = BlockingDependencyClient(
        config=_order_sync(topology), metrics=SyncChainMetrics(registry, "sync")
    )
    async with _email(topology, latency_ms=4000, concurrency=1) as email, aiohttp.ClientSession() as session:
        holder_url = f"http://{topology.proxy('sync', 'email').listen}/work"

        async def hold() -> int:
            async with session.post(holder_url, json={"order_id": "holder"}) as r:
                return r.status

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(CallFailed) as failed:
            await asyncio.to_thread(client.call, "email", {"order_id": "late"}, client.clock() + 0.3)
        took = time.monotonic() - started
        assert await holder == 200
        await asyncio.sleep(0.05)
        assert email.service.ledger.applied_many(["holder", "late"]) == {"holder": 1, "late": 0}
    assert failed.value.outcome == "deadline_exceeded" and failed.value.http_status == 504
    assert 0.25 <= took < 0.45, took  # the 0.5 s timeout capped to the 0.3 s left, no retry
    assert _calls(registry, names.DOWNSTREAM_CALL_ATTEMPTS, outcome="timeout") == 1
    assert _calls(registry, names.DOWNSTREAM_CALL_ATTEMPTS, outcome="deadline_exceeded") == 1
    dropped = email.registry.get_sample_value(
        names.DOWNSTREAM_DEADLINE_DROPPED, {"lane": "sync", "dependency": "email"}
    )
    assert dropped == 1


async def _order_service(policy: str, email_latency_ms: float) -> AsyncIterator[tuple[TestServer, Email]]:
    settings = _settings(
        {"retry": {"policy": policy}}, DependencySettings(latency_ms=email_latency_ms, spread=0)
    )
    topology = Topology.from_settings(settings)
    async with _email(topology, latency_ms=email_latency_ms) as email:
        orders = TestServer(
            build_sync_app(config=_order_sync(topology), registry=CollectorRegistry()), host="127.0.0.1"
        )
        await orders.start_server()
        try:
            yield orders, email
        finally:
            await orders.close()


async def test_a_shoppers_deadline_bounds_the_order_under_the_deadline_policy_only() -> None:
    """Email works 200 ms (2 s at time scale 0.1); the shopper waits 150 ms.  Under
    ``deadline`` the order answers 504 at about 150 ms and email drops the work; under
    ``seed`` the header means nothing and the order is confirmed."""
    for policy, status in (("deadline", 504), ("seed", 200)):
        async for orders, email in _order_service(policy, email_latency_ms=2000):
            async with aiohttp.ClientSession() as session:
                started = time.monotonic()
                headers = {DEADLINE_HEADER: "150"}
                async with session.post(orders.make_url("/orders"), json=ORDER, headers=headers) as r:
                    body = await r.json()
                    took = time.monotonic() - started
                    assert r.status == status, body
                async with session.post(
                    orders.make_url("/orders"), json=ORDER, headers={DEADLINE_HEADER: "x"}
                ) as r:
                    malformed = r.status
                await asyncio.sleep(0.25)  # email's 200 ms of work, had it kept it
            applied = email.service.ledger.totals()[1]
            if policy == "deadline":
                assert body["error"] == "deadline_exceeded" and body["dependency"] == "email"
                assert 0.14 <= took < 0.3, took
                assert malformed == 400
                assert applied == 0
            else:
                assert took >= 0.2 and malformed == 200 and applied == 2
