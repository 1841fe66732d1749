"""An async worker: consumes ``order.confirmed`` and does one step (inventory, email, ...).

For each message it calls its dependency through Toxiproxy, then publishes an
``order.step.<dependency>`` event (confirmed by the broker), records the order as done and
only then acknowledges.  It is idempotent twice over: it skips orders it has recorded as done,
and it sends the dependency an idempotency key, so a message redelivered after a crash at any
point changes nothing twice.  Failures are retried with a growing, capped delay while the
message stays unacknowledged (prefetch bounds how many it holds); after the last attempt, or
at once for a 4xx, the message is dead-lettered and the step reported failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from model.settings import RetrySettings
from model.target_config import TargetConfig
from targets.async_client import AsyncDependencyClient
from targets.brokers.interface import (
    ORDER_CONFIRMED,
    STATUS_QUEUE,
    Broker,
    BrokerUnavailable,
    Delivery,
    Message,
    step_routing_key,
    worker_queue,
)
from targets.db import connect
from targets.metrics import BrokerLoss, WorkerMetrics
from targets.random_streams import RandomStreams, add_seed_routes
from targets.resilience import CallFailed
from targets.tracing import child_traceparent
from targets.web import base_app

__all__ = ["Worker", "build_worker_app"]

log = logging.getLogger(__name__)

_ONE_ATTEMPT = RetrySettings(attempts=1)
_CUSTOMERS_REMEMBERED = 100_000


class DoneOrders:
    """The worker's own record of the orders whose step it has completed."""

    def __init__(self, path: Path) -> None:
        self.db = connect(
            path, schema="CREATE TABLE IF NOT EXISTS done (order_id TEXT PRIMARY KEY, at REAL);"
        )

    def contains(self, order_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM done WHERE order_id = ?", (order_id,)).fetchone() is not None

    def add(self, order_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO done VALUES (?, ?)", (order_id, time.time()))

    def close(self) -> None:
        self.db.close()


class Worker:
    def __init__(
        self,
        *,
        config: TargetConfig,
        registry: CollectorRegistry,
        broker: Broker,
        done: DoneOrders,
        streams: RandomStreams,
    ) -> None:
        if config.dependency is None:
            raise ValueError(f"{config.name}: a worker needs its dependency")
        settings = config.settings
        dependency = config.dependency
        self.lane = config.lane
        self.dependency = dependency
        self.settings = settings
        self.broker = broker
        self.done = done
        self.queue = worker_queue(dependency)
        self.consuming = False  # set once its consumer is registered with the broker
        self.metrics = WorkerMetrics(registry)
        self.metrics.declare(self.lane, dependency)
        BrokerLoss(registry, self.lane, lambda: broker.lost_messages)  # its step events (Pub/Sub)
        self.client = AsyncDependencyClient(
            lane=self.lane,
            urls={dependency: config.dependency_url(dependency)},
            timeout_s=settings.scaled(settings.async_.worker_timeout_s),
            time_scale=settings.time_scale,
            metrics=self.metrics.calls,
            rng=streams.stream("retry"),
        )
        self._in_progress = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # customer -> when their latest order handled here was accepted (bounded, oldest out)
        self._latest: OrderedDict[str, float] = OrderedDict()

    def retry_delay(self, failed_attempt: int) -> float:
        retry = self.settings.async_.worker_retry
        delay = retry.initial_delay_s * 2 ** (failed_attempt - 1)
        return self.settings.scaled(min(delay, retry.max_delay_s))

    async def handle(self, delivery: Delivery) -> None:
        labels = (self.lane, self.dependency)
        if delivery.redelivered:
            self.metrics.redelivered.labels(*labels).inc()
        try:
            event = json.loads(delivery.message.body)
            order_id = str(event["order_id"])
        except (ValueError, KeyError, TypeError):
            log.error("malformed message %r: dead-lettered", delivery.message.body[:200])
            self.metrics.dead_lettered.labels(*labels).inc()
            await delivery.dead_letter()
            return
        if self.done.contains(order_id):
            self.metrics.duplicates.labels(*labels).inc()
            self.metrics.processed.labels(*labels, "duplicate").inc()
            await delivery.ack()
            return
        self._check_order(event)
        self._in_progress += 1
        self.metrics.in_progress.labels(*labels).set(self._in_progress)
        try:
            await self._process(delivery, order_id)
        finally:
            self._in_progress -= 1
            self.metrics.in_progress.labels(*labels).set(self._in_progress)

    def _check_order(self, event: dict[str, object]) -> None:
        """Count an order that arrives after a later order of the same customer."""
        customer, accepted_at = event.get("customer_id"), event.get("accepted_at")
        if not isinstance(customer, str) or not isinstance(accepted_at, int | float):
            return
        latest = self._latest.get(customer)
        if latest is not None and accepted_at < latest:
            self.metrics.out_of_order.labels(self.lane, self.dependency).inc()
            return
        self._latest[customer] = float(accepted_at)
        self._latest.move_to_end(customer)
        if len(self._latest) > _CUSTOMERS_REMEMBERED:
            self._latest.popitem(last=False)

    async def _process(self, delivery: Delivery, order_id: str) -> None:
        labels = (self.lane, self.dependency)
        max_attempts = self.settings.async_.worker_retry.max_attempts
        payload = {"order_id": order_id, "idempotency_key": f"{order_id}:{self.dependency}"}
        state = "done"
        for attempt in range(1, max_attempts + 1):
            try:
                await self.client.call(self.dependency, payload, _ONE_ATTEMPT)
                break
            except CallFailed as failure:
                if failure.outcome == "http_4xx" or attempt == max_attempts:
                    log.warning("order %s: %s; dead-lettering", order_id, failure)
                    state = "failed"
                    break
                self.metrics.calls.retries.labels(*labels).inc()
                await asyncio.sleep(self.retry_delay(attempt))
        if not await self._report(delivery, order_id, state):
            # The broker would not confirm our step event: leave the message to be redelivered.
            await delivery.requeue()
            return
        self.done.add(order_id)
        if state == "done":
            self.metrics.processed.labels(*labels, "done").inc()
            await delivery.ack()
        else:
            self.metrics.processed.labels(*labels, "dead_lettered").inc()
            self.metrics.dead_lettered.labels(*labels).inc()
            await delivery.dead_letter()

    async def _report(self, delivery: Delivery, order_id: str, state: str) -> bool:
        headers = dict(delivery.message.headers)
        headers["traceparent"] = child_traceparent(headers.get("traceparent"))
        body = json.dumps(
            {"order_id": order_id, "dependency": self.dependency, "state": state, "at": time.time()}
        ).encode()
        message = Message(
            message_id=f"{order_id}:{self.dependency}",
            routing_key=step_routing_key(self.dependency),
            body=body,
            headers=headers,
        )
        for attempt in range(5):
            try:
                await self.broker.publish(message, timeout_s=5.0)
                return True
            except BrokerUnavailable as exc:
                log.warning("step event for %s not confirmed: %s", order_id, exc)
                await asyncio.sleep(0.2 * 2**attempt)
        return False

    async def connect(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.broker.connect()
                # Step events route to the order service's status queue: declare it first.
                await self.broker.ensure_queues(
                    {STATUS_QUEUE: tuple(step_routing_key(d) for d in self.settings.deferred)}
                )
                await self.broker.consume(
                    self.queue, (ORDER_CONFIRMED,), self.settings.async_.prefetch, self.handle
                )
                self.consuming = True
                return
            except BrokerUnavailable as exc:
                log.warning("broker not reachable yet: %s", exc)
                await self.broker.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def watch_queue(self) -> None:
        depth = self.metrics.queue_depth.labels(self.lane, self.queue)
        while True:
            value = await self.broker.queue_depth(self.queue)
            if value is not None:
                depth.set(value)
            await asyncio.sleep(1.0)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        await self.client.start()
        for coro in (self.connect(), self.watch_queue()):
            task = asyncio.ensure_future(coro)
            self._tasks.add(task)
        yield
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.broker.close()
        await self.client.close()
        self.done.close()


WORKER_KEY = web.AppKey("worker", Worker)


def build_worker_app(
    *,
    config: TargetConfig,
    registry: CollectorRegistry,
    data_dir: Path,
    broker: Broker,
    streams: RandomStreams | None = None,
) -> web.Application:
    """``streams``: the process's random draws (its own, on seed 0, if not given)."""
    streams = streams or RandomStreams(config.name)
    worker = Worker(
        config=config,
        registry=registry,
        broker=broker,
        done=DoneOrders(data_dir / f"{config.name}.sqlite3"),
        streams=streams,
    )
    # Ready once consuming (a cut broker later is a fault, not a start).
    app = base_app(registry, ready=lambda: worker.consuming)
    add_seed_routes(app, streams)
    app[WORKER_KEY] = worker
    app.cleanup_ctx.append(worker.lifecycle)
    return app
