"""The sync lane and a client's idempotency key, on real loopback sockets: a payment service
listens where the lane's proxy would, so its ledger counts the charges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from model import metric_names as names
from model.settings import DependencySettings, StackSettings
from model.target_config import resolve_target_config
from model.topology import Topology
from targets.downstream import SERVICE_KEY, DownstreamService, HttpFaults, build_downstream_app
from targets.random_streams import RandomStreams
from targets.sync_lane import build_sync_app

ORDER = {"customer_id": "c-1", "items": [{"sku": "tv-55", "qty": 1}], "idempotency_key": "k-1"}


@dataclass(frozen=True)
class SyncLane:
    orders: TestServer
    registry: CollectorRegistry  # the order service's
    payment: DownstreamService


async def _lane(idempotency_keys: bool) -> AsyncIterator[SyncLane]:
    settings = StackSettings.model_validate(
        {
            "chain": {"payment": DependencySettings(latency_ms=200, spread=0).model_dump()},
            "critical": ["payment"],
            "sync": {"idempotency_keys": idempotency_keys},
            "ports": {"base": 24700},
        }
    )
    topology = Topology.from_settings(settings)
    payment_app = build_downstream_app(
        lane="sync", dependency="payment", settings=settings.chain["payment"], time_scale=1.0,
        registry=CollectorRegistry(), streams=RandomStreams("downstream-sync-payment", seed=1),
    )  # fmt: skip
    runner = web.AppRunner(payment_app)
    await runner.setup()
    listen = topology.proxy("sync", "payment").listen_endpoint
    await web.TCPSite(runner, listen.host, listen.port).start()
    registry = CollectorRegistry()
    orders = TestServer(
        build_sync_app(
            config=resolve_target_config(topology, topology.process("order-sync"), data_dir=Path(".")),
            registry=registry,
        ),
        host="127.0.0.1",
    )
    await orders.start_server()
    try:
        yield SyncLane(orders=orders, registry=registry, payment=payment_app[SERVICE_KEY])
    finally:
        await orders.close()
        await runner.cleanup()


@pytest.fixture
async def keyed_lane() -> AsyncIterator[SyncLane]:
    async for lane in _lane(idempotency_keys=True):
        yield lane


@pytest.fixture
async def naive_lane() -> AsyncIterator[SyncLane]:
    async for lane in _lane(idempotency_keys=False):
        yield lane


async def _post(lane: SyncLane, n: int) -> list[tuple[int, str | None, bool]]:
    async with aiohttp.ClientSession() as session:

        async def one() -> tuple[int, str | None, bool]:
            async with session.post(lane.orders.make_url("/orders"), json=ORDER) as response:
                body = await response.json()
                return response.status, response.headers.get("Location"), bool(body.get("replayed"))

        return await asyncio.gather(*(one() for _ in range(n)))


async def test_with_idempotency_keys_concurrent_duplicates_run_one_chain_and_charge_once(
    keyed_lane: SyncLane,
) -> None:
    answers = await _post(keyed_lane, 20)
    assert [status for status, _, _ in answers] == [200] * 20
    assert len({location for _, location, _ in answers}) == 1
    assert sum(replayed for _, _, replayed in answers) == 19  # they waited for the first one
    assert keyed_lane.payment.ledger.totals() == (1, 1, 0)  # one order, one charge
    later = await _post(keyed_lane, 1)
    assert later[0][:2] == answers[0][:2] and later[0][2]


async def test_without_idempotency_keys_the_naive_lane_ignores_the_clients_key(naive_lane: SyncLane) -> None:
    answers = await _post(naive_lane, 3)
    assert [status for status, _, _ in answers] == [200] * 3
    assert len({location for _, location, _ in answers}) == 3
    later = await _post(naive_lane, 1)
    assert later[0][0] == 200 and not later[0][2]  # not even a confirmed order is replayed
    assert naive_lane.payment.ledger.totals() == (4, 4, 0)


async def test_duplicates_of_a_failed_attempt_hear_its_failure_and_a_retry_reuses_its_order(
    keyed_lane: SyncLane,
) -> None:
    keyed_lane.payment.faults = HttpFaults(error_rate=1.0, error_status=500)
    failed = await _post(keyed_lane, 5)
    assert [status for status, _, _ in failed] == [502] * 5
    assert len({location for _, location, _ in failed}) == 1
    labels = {"lane": "sync", "dependency": "payment", "outcome": "http_5xx"}
    assert keyed_lane.registry.get_sample_value(names.DOWNSTREAM_CALL_ATTEMPTS, labels) == 3  # one chain
    keyed_lane.payment.faults = HttpFaults()
    retried = await _post(keyed_lane, 1)
    assert retried[0][:2] == (200, failed[0][1]) and not retried[0][2]
    assert keyed_lane.payment.ledger.totals() == (1, 1, 0)
