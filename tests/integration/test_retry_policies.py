"""The deadline policy on a real stack (real Toxiproxy on every hop, real RabbitMQ): with email
far slower than the shopper waits, no email attempt is worked past its caller's deadline, so
email applies no side effect for an order the shopper gave up on.

It has a stack of its own (ports 27000 and 27474), since its retry policy is a stack setting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp
import pytest
import requests

from harness.faults.chaos import Chaos
from harness.metrics.scrape import scrape
from harness.stack.control import Stack
from harness.stack.state import StateDir
from model import metric_names as names
from model.faults import FaultSpec
from model.headers import DEADLINE_HEADER
from model.settings import StackSettings
from model.topology import Topology

ORDER = {"customer_id": "c-1", "items": [{"sku": "tv-55", "qty": 1}]}
TIME_SCALE = 0.2  # the 5 s timeout is 1 s, the chain before email 180 ms


@pytest.fixture(scope="module")
def deadline_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Topology, Chaos]]:
    stack = Stack(StateDir(tmp_path_factory.mktemp("deadline-stack")))
    settings = StackSettings.model_validate(
        {
            "time_scale": TIME_SCALE,
            "sync": {"retry": {"policy": "deadline"}},
            "ports": {"base": 27000, "toxiproxy_api": 27474},
        }
    )
    topology = stack.up(settings, timeout_s=120)
    chaos = Chaos(topology)
    try:
        yield topology, chaos
    finally:
        chaos.reset()
        stack.down()


def _metric(topology: Topology, process: str, name: str, **labels: str) -> float:
    return scrape(topology.process(process)).value(name, **labels)


async def _orders(url: str, n: int, deadline_ms: int) -> list[tuple[int, dict[str, object], float]]:
    async with aiohttp.ClientSession() as session:

        async def one() -> tuple[int, dict[str, object], float]:
            started = time.monotonic()
            headers = {DEADLINE_HEADER: str(deadline_ms)}
            async with session.post(f"{url}/orders", json=ORDER, headers=headers) as r:
                return r.status, await r.json(), time.monotonic() - started

        return await asyncio.gather(*(one() for _ in range(n)))


def test_no_email_work_outlives_its_callers_deadline(deadline_stack: tuple[Topology, Chaos]) -> None:
    topology, chaos = deadline_stack
    email = "downstream-sync-email"
    dropped_before = _metric(topology, email, names.DOWNSTREAM_DEADLINE_DROPPED)
    # 3 s more per email request, the downstream's own delay (retry-storm's trigger, larger)
    chaos.add(FaultSpec(dependency="email", type="http_delay", attributes={"latency": 3000}, lanes=("sync",)))
    answers = asyncio.run(_orders(topology.order_service("sync").url, 10, deadline_ms=2500))
    chaos.reset()
    assert {status for status, _, _ in answers} <= {502, 504}, answers
    assert all(body["dependency"] == "email" for _, body, _ in answers)
    # Without the shopper's deadline 3 attempts of 1 s and the back-offs take 3.24 s.
    assert max(took for _, _, took in answers) < 2.5 + 0.5, answers
    time.sleep(3.5)  # longer than email's delayed work: any work kept would be done by now
    order_ids = [str(body["order_id"]) for _, body, _ in answers]
    check = requests.post(
        f"{topology.endpoint(email).url}/ledger/check", json={"order_ids": order_ids}, timeout=5
    ).json()
    assert check["applied"] == dict.fromkeys(order_ids, 0)  # no email for a shopper who left
    dropped = _metric(topology, email, names.DOWNSTREAM_DEADLINE_DROPPED) - dropped_before
    attempts = _metric(topology, "order-sync", names.DOWNSTREAM_CALL_ATTEMPTS, dependency="email")
    refused = _metric(
        topology,
        "order-sync",
        names.DOWNSTREAM_CALL_ATTEMPTS,
        dependency="email",
        outcome="deadline_exceeded",
    )
    assert dropped == attempts - refused, (dropped, attempts, refused)  # every attempt sent was dropped
    assert dropped >= 20  # 10 orders, 2 or 3 attempts each within 2.5 s
