"""The async lane on every broker: the same stack, the same kill -9, each broker's own promise.

Each broker gets a whole stack of its own (conftest's ``broker_stack``, one a broker, shared
with the other modules), the broker's connection crossing Toxiproxy like every other hop. Orders flow in
while the email worker is killed with ``kill -9`` and restarted by the supervisor. A durable
broker (RabbitMQ, Redis Streams, Kafka, SQS) keeps what the dead worker had not acknowledged and
what was published while it was away: every order is fulfilled, no side effect happens twice.
Redis Pub/Sub forgets both: the orders it could not deliver are never fulfilled, and the order
service's ``doorbuster_broker_messages_lost_total`` counts exactly them.
"""

from __future__ import annotations

import asyncio
import time

from harness.run.smoke import wait_fulfilled
from model import metric_names as names
from tests.integration.conftest import RunningStack
from tests.integration.test_faults import BackgroundOrders, _assert_nothing_lost, _kill, _wait_restarted


def test_the_broker_connection_crosses_toxiproxy(broker_stack: RunningStack) -> None:
    proxy = broker_stack.topology.proxy("async", "broker")
    assert f"@{proxy.listen}" in broker_stack.topology.broker_url().replace("//", "@")
    # With the async-broker proxy disabled the lane still answers 202 (the outbox keeps the
    # orders) but fulfils nothing; enabled again, every order goes through.
    lost_before = _lost_counter(broker_stack)
    broker_stack.chaos.set_enabled("broker", ("async",), enabled=False)
    try:
        statuses, accepted = _orders(broker_stack, 10)
        assert statuses == [202] * 10
        assert asyncio.run(wait_fulfilled(broker_stack.url("async"), accepted, timeout_s=4)) == 0
    finally:
        broker_stack.chaos.set_enabled("broker", ("async",), enabled=True)
    if broker_stack.topology.settings.broker != "redis-pubsub":
        assert asyncio.run(wait_fulfilled(broker_stack.url("async"), accepted, timeout_s=120)) == 10
        return
    # Pub/Sub: a worker whose subscription is not back yet misses what the relay publishes
    # first; every order not fulfilled is one whose loss was counted.
    fulfilled = asyncio.run(wait_fulfilled(broker_stack.url("async"), accepted, timeout_s=30))
    assert fulfilled > 0
    assert 10 - fulfilled <= _lost_counter(broker_stack) - lost_before


def _orders(stack: RunningStack, n: int) -> tuple[list[int], list[str]]:
    with BackgroundOrders(stack.url("async"), rate=10, seconds=n / 10) as load:
        pass
    return load.statuses, load.accepted


def _lost_counter(stack: RunningStack) -> float:
    return stack.metric("order-async", names.BROKER_MESSAGES_LOST, lane="async")


def test_kill_9_the_email_worker_each_broker_keeps_its_promise(broker_stack: RunningStack) -> None:
    name = broker_stack.topology.settings.broker
    lost_before = _lost_counter(broker_stack)
    with BackgroundOrders(broker_stack.url("async"), rate=8, seconds=10) as load:
        time.sleep(3)
        old = _kill(broker_stack, "worker-email")
        _wait_restarted(broker_stack, "worker-email", old)
    assert load.statuses.count(202) == len(load.statuses)
    if name != "redis-pubsub":
        _assert_nothing_lost(broker_stack, load, timeout=150)
        assert _lost_counter(broker_stack) == lost_before
        return
    fulfilled = asyncio.run(wait_fulfilled(broker_stack.url("async"), load.accepted, timeout_s=30))
    unfulfilled = len(load.accepted) - fulfilled
    counted = _lost_counter(broker_stack) - lost_before
    # Published while nobody listened: Redis says so, and each one is counted.  Messages the
    # worker had received and not yet acted on died with it, which no broker can report; the
    # run's ledger finds those as orders never fulfilled.  Nothing is counted that arrived.
    assert 0 < counted <= unfulfilled
