"""A downstream service on a real loopback socket: capacity, idempotency, wasted work, faults."""

from __future__ import annotations

import asyncio
import random
import statistics
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from model import metric_names as names
from model.settings import DependencySettings
from targets.downstream import SERVICE_KEY, DownstreamService, build_downstream_app
from targets.metrics import DownstreamServerMetrics
from targets.random_streams import RandomStreams


async def _server(dep: str, settings: DependencySettings, registry: CollectorRegistry) -> TestServer:
    app = build_downstream_app(
        lane="sync", dependency=dep, settings=settings, time_scale=1.0, registry=registry,
        streams=RandomStreams(f"downstream-sync-{dep}", seed=3),
    )  # fmt: skip
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def payment() -> AsyncIterator[tuple[TestServer, CollectorRegistry]]:
    registry = CollectorRegistry()
    server = await _server("payment", DependencySettings(latency_ms=100, concurrency=2, queue=1), registry)
    yield server, registry
    await server.close()


def _service(server: TestServer) -> DownstreamService:
    return server.app[SERVICE_KEY]


async def test_beyond_capacity_and_queue_it_answers_503_at_once(
    payment: tuple[TestServer, CollectorRegistry],
) -> None:
    server, registry = payment
    async with aiohttp.ClientSession() as session:

        async def post(i: int) -> int:
            async with session.post(server.make_url("/work"), json={"order_id": f"o{i}"}) as r:
                return r.status

        statuses = await asyncio.gather(*(post(i) for i in range(6)))
    assert sorted(statuses) == [200, 200, 200, 503, 503, 503]
    assert (
        registry.get_sample_value(names.DOWNSTREAM_REJECTED, {"lane": "sync", "dependency": "payment"}) == 3
    )


async def test_same_key_is_charged_once_no_key_is_charged_twice(
    payment: tuple[TestServer, CollectorRegistry],
) -> None:
    server, registry = payment
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            body = {"order_id": "a", "idempotency_key": "a:payment"}
            async with session.post(server.make_url("/work"), json=body) as r:
                assert r.status == 200
        for _ in range(2):
            async with session.post(server.make_url("/work"), json={"order_id": "b"}) as r:
                assert r.status == 200
    assert _service(server).ledger.applied_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 0}
    labels = {"lane": "sync"}
    assert registry.get_sample_value(names.PAYMENT_DUPLICATE_CHARGES, labels) == 1
    assert (
        registry.get_sample_value(
            names.DOWNSTREAM_IDEMPOTENT_REPLAYS, {"lane": "sync", "dependency": "payment"}
        )
        == 1
    )


async def test_a_caller_that_gives_up_still_holds_the_slot_and_the_work_happens(
    payment: tuple[TestServer, CollectorRegistry],
) -> None:
    server, _ = payment
    service = _service(server)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.post(
                server.make_url("/work"), json={"order_id": "gone"},
                timeout=aiohttp.ClientTimeout(total=0.02),
            )  # fmt: skip
    await asyncio.sleep(0.03)
    assert service._inflight == 1  # the work goes on without its caller
    await asyncio.sleep(0.6)
    assert service.ledger.applied("gone") == 1
    assert service._inflight == 0


async def test_latency_is_spread_around_the_median_not_constant() -> None:
    service = DownstreamService(
        lane="sync", dependency="email", settings=DependencySettings(latency_ms=800),
        time_scale=1.0, metrics=_metrics(), rng=random.Random(1),
    )  # fmt: skip
    samples = [service.work_seconds() for _ in range(2000)]
    assert 0.76 <= statistics.median(samples) <= 0.84
    assert statistics.pstdev(samples) > 0.1
    assert min(samples) >= 0.16 and max(samples) <= 4.0


async def test_time_scale_shrinks_the_latency() -> None:
    service = DownstreamService(
        lane="sync", dependency="email", settings=DependencySettings(latency_ms=800, spread=0),
        time_scale=0.1, metrics=_metrics(),
    )  # fmt: skip
    assert service.work_seconds() == pytest.approx(0.08)


async def test_http_faults_error_rate_and_extra_latency(
    payment: tuple[TestServer, CollectorRegistry],
) -> None:
    server, _ = payment
    async with aiohttp.ClientSession() as session:
        async with session.put(
            server.make_url("/admin/faults"), json={"error_rate": 1, "error_status": 502}
        ) as r:
            assert r.status == 200
        async with session.post(server.make_url("/work"), json={"order_id": "x"}) as r:
            assert r.status == 502
        async with session.put(server.make_url("/admin/faults"), json={"error_rate": 7}) as r:
            assert r.status == 422
        async with session.put(server.make_url("/admin/faults"), json={"extra_latency_ms": 300}) as r:
            assert r.status == 200
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with session.post(server.make_url("/work"), json={"order_id": "y"}) as r:
            assert r.status == 200
        assert loop.time() - started >= 0.3
        async with session.post(server.make_url("/work"), data=b"[1]") as r:
            assert r.status == 400
        async with session.post(server.make_url("/work"), json={"order_id": 5}) as r:
            assert r.status == 422


def _metrics() -> DownstreamServerMetrics:

    return DownstreamServerMetrics(CollectorRegistry())


async def test_a_delay_rate_slows_only_that_fraction_of_requests() -> None:
    from targets.downstream import HttpFaults

    service = DownstreamService(
        lane="sync", dependency="email", settings=DependencySettings(latency_ms=100, spread=0),
        time_scale=1.0, metrics=_metrics(), rng=random.Random(5),
    )  # fmt: skip
    service.faults = HttpFaults(extra_latency_ms=30000, delay_rate=0.7)
    slowed = sum(service.work_seconds() > 1 for _ in range(2000)) / 2000
    assert 0.66 <= slowed <= 0.74
