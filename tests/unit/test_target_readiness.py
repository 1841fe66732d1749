"""A target that needs its broker says whether it has connected once (``ready``), and a
stack's ``up`` waits for it, so no test or run begins against a lane still connecting; alive
is 200 throughout, since the async lane takes orders into its outbox with no broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from model.settings import PortSettings, StackSettings
from model.target_config import resolve_target_config
from model.topology import Topology
from targets.brokers.interface import Broker, BrokerUnavailable, Handler, Message
from targets.worker import build_worker_app


class GatedBroker(Broker):
    """Refuses connections until ``gate`` is set; a fake passed in as an argument."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.consumers: list[str] = []

    async def connect(self) -> None:
        if not self.gate.is_set():
            raise BrokerUnavailable("not yet")

    async def close(self) -> None:
        return None

    async def ensure_queues(self, queues: dict[str, tuple[str, ...]]) -> None:
        return None

    async def publish(self, message: Message, *, timeout_s: float) -> None:
        return None

    async def consume(
        self, queue: str, routing_keys: tuple[str, ...], prefetch: int, handler: Handler
    ) -> None:
        self.consumers.append(queue)

    async def queue_depth(self, queue: str) -> int | None:
        return 0


async def test_a_worker_is_ready_once_it_consumes_and_stays_ready(tmp_path: Path) -> None:
    topology = Topology.from_settings(StackSettings(ports=PortSettings(base=27800)))
    config = resolve_target_config(topology, topology.process("worker-email"), data_dir=tmp_path)
    broker = GatedBroker()
    app = build_worker_app(config=config, registry=CollectorRegistry(), data_dir=tmp_path, broker=broker)
    async with TestClient(TestServer(app)) as client:
        first = await client.get("/health")
        assert first.status == 200 and (await first.json())["ready"] is False
        broker.gate.set()
        for _ in range(100):  # the worker retries with a growing delay, 0.2 s first
            await asyncio.sleep(0.05)
            if broker.consumers:
                break
        assert len(broker.consumers) == 1, broker.consumers
        assert (await (await client.get("/health")).json())["ready"] is True
        broker.gate.clear()  # a broker cut later is a fault, not a start: still ready
        assert (await (await client.get("/health")).json())["ready"] is True
