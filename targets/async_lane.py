"""The async lane: validate payment, store the order and its event, answer 202.

``POST /orders`` calls payment synchronously (through Toxiproxy; you need to know at once
whether the card is good), then writes the order, its pending steps and an outbox row in one
SQLite transaction and answers ``202 Accepted`` with ``Location: /orders/{id}``.  The relay
publishes outbox rows to the broker (through Toxiproxy) and marks each sent only once the
broker confirmed it, so a broker outage delays orders and loses none.  The status consumer
reads the workers' step events; when every step is done the order is fulfilled and its
webhook, if any, is called.

A client's ``idempotency_key`` is claimed before payment is called (``targets.idempotency``):
duplicates get the first attempt's order (``202``, same ``Location``) or, while it is still
paying, wait for its answer; after a failed payment a retry with the key pays again under
the same order id, so payment's own idempotency keeps it to one charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

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
from targets.idempotency import AttemptInFlight, ClaimOutcome, RunningAttempts
from targets.metrics import BrokerLoss, DownstreamCallMetrics, OrderMetrics
from targets.openapi import order_spec
from targets.order_store import OrderStore
from targets.orders import InvalidOrder, OrderRequest, parse_order
from targets.random_streams import RandomStreams, add_seed_routes
from targets.resilience import CallFailed, longest_call_s
from targets.tracing import new_traceparent
from targets.web import RequestRefused, base_app, json_error, read_json_object

__all__ = ["AsyncOrderService", "build_async_app"]

log = logging.getLogger(__name__)


class AsyncOrderService:
    def __init__(
        self,
        *,
        config: TargetConfig,
        registry: CollectorRegistry,
        store: OrderStore,
        broker: Broker,
        streams: RandomStreams,
    ) -> None:
        settings = config.settings
        self.lane = config.lane
        self.settings = settings
        self.steps = settings.deferred
        self.store = store
        self.broker = broker
        self.metrics = OrderMetrics(registry, self.lane)
        self.client = AsyncDependencyClient(
            lane=self.lane,
            urls={dep: config.dependency_url(dep) for dep in settings.critical},
            timeout_s=settings.scaled(settings.async_.critical_timeout_s),
            time_scale=settings.time_scale,
            metrics=DownstreamCallMetrics(registry),
            rng=streams.stream("retry"),
        )
        # A claim outlives its attempt only if this process died during it: twice the longest
        # the critical calls can take, then a retry may take it over.
        self.claim_lease_s = (
            2
            * len(settings.critical)
            * longest_call_s(settings.async_.critical_retry, self.client.timeout_s, settings.time_scale)
        )
        self._attempts: RunningAttempts[tuple[int, dict[str, Any]]] = RunningAttempts()
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._webhooks: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.metrics.outbox_backlog.labels(self.lane).set(store.backlog())
        for counter in (self.metrics.outbox_published, self.metrics.outbox_publish_failures):
            counter.labels(self.lane)
        BrokerLoss(registry, self.lane, lambda: broker.lost_messages)

    def connected(self) -> bool:
        """Connected to the broker once (it may be cut since: that is a fault, not a start)."""
        return self._connected.is_set()

    # -- accepting orders ------------------------------------------------------------
    async def accept(self, body: dict[str, Any], correlation_id: str) -> tuple[int, dict[str, Any]]:
        """Pay, store and answer 202; a client's idempotency key is claimed before payment is
        called, so duplicates (concurrent or retried) charge once and get the same order."""
        order = parse_order(body)
        key = order.idempotency_key
        if key is None:
            return await self._place(order, uuid.uuid4().hex, correlation_id)
        claim = self.store.claim(key, uuid.uuid4().hex, lease_s=self.claim_lease_s)
        if claim.outcome is ClaimOutcome.WON:
            return await self._attempts.run(key, self._place(order, claim.order_id, correlation_id))
        if claim.outcome is ClaimOutcome.RUNNING:
            running = self._attempts.get(key)
            if running is None:  # a crashed process's claim, until its lease runs out
                raise AttemptInFlight(claim.order_id)
            await running  # its failure (CallFailed) is this duplicate's answer too
        return 202, {"order_id": claim.order_id, "status": "accepted", "replayed": True}

    async def _place(
        self, order: OrderRequest, order_id: str, correlation_id: str
    ) -> tuple[int, dict[str, Any]]:
        key = order.idempotency_key
        try:
            for dep in self.settings.critical:
                await self.client.call(
                    dep,
                    {"order_id": order_id, "idempotency_key": f"{order_id}:{dep}"},
                    self.settings.async_.critical_retry,
                )
            traceparent = new_traceparent()
            event = {
                "order_id": order_id,
                **order.to_json(),
                "correlation_id": correlation_id,
                "accepted_at": time.time(),
            }
            headers = {
                "correlation_id": correlation_id,
                "traceparent": traceparent,
                "ordering_key": order.customer_id,
            }
            stored = self.store.accept(
                order_id=order_id,
                customer_id=order.customer_id,
                body=order.to_json(),
                steps=self.steps,
                idempotency_key=key,
                webhook_url=order.webhook_url,
                correlation_id=correlation_id,
                event=(ORDER_CONFIRMED, json.dumps(event).encode(), headers),
            )
        except BaseException:
            if key is not None:
                self.store.release(key, order_id)
            raise
        if not stored:
            return 202, {"order_id": order_id, "status": "accepted", "replayed": True}
        self.metrics.orders.labels(self.lane, "accepted").inc()
        self._wake.set()
        return 202, {"order_id": order_id, "status": "accepted", "correlation_id": correlation_id}

    # -- the relay -------------------------------------------------------------------
    async def connect_broker(self) -> None:
        """Connect, retrying with back-off: the order service takes orders meanwhile."""
        delay = 0.2
        while True:
            try:
                await self.broker.connect()
                # The publisher declares every queue its events route to before it publishes:
                # an event published before a worker first started would otherwise be lost.
                await self.broker.ensure_queues({worker_queue(dep): (ORDER_CONFIRMED,) for dep in self.steps})
                await self.broker.consume(
                    STATUS_QUEUE,
                    tuple(step_routing_key(dep) for dep in self.steps),
                    self.settings.async_.prefetch,
                    self.on_step_event,
                )
                self._connected.set()
                self._wake.set()
                return
            except BrokerUnavailable as exc:
                log.warning("broker not reachable yet: %s", exc)
                await self.broker.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def relay(self) -> None:
        """Publish outbox rows in order; a row is marked sent only once confirmed."""
        await self._connected.wait()
        delay = 0.1
        backlog = self.metrics.outbox_backlog.labels(self.lane)
        while True:
            rows = self.store.unsent(self.settings.async_.relay_batch)
            backlog.set(self.store.backlog())
            if not rows:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=0.5)
                continue
            try:
                for row in rows:
                    await self.broker.publish(
                        Message(
                            message_id=row.message_id,
                            routing_key=row.routing_key,
                            body=row.payload,
                            headers=row.headers,
                        ),
                        timeout_s=5.0,
                    )
                    self.store.mark_sent(row.seq)
                    self.metrics.outbox_published.labels(self.lane).inc()
                delay = 0.1
            except BrokerUnavailable as exc:
                self.metrics.outbox_publish_failures.labels(self.lane).inc()
                log.warning("relay: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- fulfilment ------------------------------------------------------------------
    async def on_step_event(self, delivery: Delivery) -> None:
        try:
            event = json.loads(delivery.message.body)
            order_id, dep, state = event["order_id"], event["dependency"], event["state"]
        except (ValueError, KeyError, TypeError):
            log.error("malformed step event %r: dead-lettered", delivery.message.body[:200])
            await delivery.dead_letter()
            return
        update = self.store.apply_step(str(order_id), str(dep), str(state))
        if update is not None and update.finished_now:
            self.metrics.orders.labels(self.lane, update.status).inc()
            self.metrics.fulfillment.labels(self.lane, update.status).observe(time.time() - update.created_at)
            if update.webhook_url:
                self._spawn(self._call_webhook(update.webhook_url, update.order_id, update.status))
        await delivery.ack()

    async def _call_webhook(self, url: str, order_id: str, status: str) -> None:
        assert self._webhooks is not None
        payload = {"order_id": order_id, "status": status, "order": self.store.get(order_id)}
        try:
            async with self._webhooks.post(url, json=payload) as response:
                outcome = "ok" if response.status < 400 else "http_error"
        except (TimeoutError, aiohttp.ClientError, OSError):
            outcome = "unreachable"
        self.metrics.webhooks.labels(self.lane, outcome).inc()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle -------------------------------------------------------------------
    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        await self.client.start()
        self._webhooks = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._spawn(self.connect_broker())
        self._spawn(self.relay())
        yield
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._attempts.cancel()
        await self.broker.close()
        await self.client.close()
        await self._webhooks.close()
        self.store.close()


ASYNC_KEY = web.AppKey("async_service", AsyncOrderService)


async def _post_order(request: web.Request) -> web.Response:
    service = request.app[ASYNC_KEY]
    started = time.perf_counter()
    correlation_id = request.headers.get("X-Correlation-Id", "")[:64] or uuid.uuid4().hex
    try:
        status, body = await service.accept(await read_json_object(request), correlation_id)
    except InvalidOrder as exc:
        status, body = 422, {"error": "invalid_order", "detail": str(exc)}
    except CallFailed as failure:
        status, body = failure.http_status, failure.as_json()
    except AttemptInFlight as exc:
        status, body = exc.http_status, exc.as_json()
    except RequestRefused as exc:
        status, body = exc.status, {"error": exc.error, "detail": exc.detail}
    metrics = service.metrics
    metrics.requests.labels(service.lane, "POST", str(status)).inc()
    metrics.latency.labels(service.lane, str(status)).observe(time.perf_counter() - started)
    headers = {"X-Correlation-Id": correlation_id}
    if status == 202:
        headers["Location"] = f"/orders/{body['order_id']}"
    return web.json_response(body, status=status, headers=headers)


async def _get_order(request: web.Request) -> web.Response:
    record = request.app[ASYNC_KEY].store.get(request.match_info["order_id"])
    if record is None:
        return json_error(404, "not_found")
    return web.json_response(record)


async def _ledger(request: web.Request) -> web.Response:
    """Order counts (of orders accepted from ``since`` on, when given) and the outbox backlog;
    with ``before``, the drain of the orders accepted in between."""
    service = request.app[ASYNC_KEY]
    times: dict[str, float] = {}
    for name in ("since", "before"):
        if name in request.query:
            try:
                times[name] = float(request.query[name])
            except ValueError:
                return json_error(400, "bad_query", detail=f"{name}: expected a UNIX timestamp")
            if not math.isfinite(times[name]):
                return json_error(400, "bad_query", detail=f"{name}: expected a UNIX timestamp")
    since = times.get("since", 0.0)
    body: dict[str, Any] = {"orders": service.store.counts(since), "outbox_backlog": service.store.backlog()}
    if "before" in times:
        body["drain"] = service.store.drain(times["before"], since)
    return web.json_response(body)


async def _ledger_check(request: web.Request) -> web.Response:
    """POST {"order_ids": [...]} -> each one's status, "missing" for ids never stored."""
    body = await read_json_object(request)
    ids = body.get("order_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 1_000_000:
        return json_error(422, "invalid", detail="order_ids: expected a list of strings")
    found = request.app[ASYNC_KEY].store.statuses(ids)
    return web.json_response({"statuses": {i: found.get(i, "missing") for i in ids}})


def build_async_app(
    *,
    config: TargetConfig,
    registry: CollectorRegistry,
    data_dir: Path,
    broker: Broker,
    streams: RandomStreams | None = None,
) -> web.Application:
    """``streams``: the process's random draws (its own, on seed 0, if not given)."""
    store = OrderStore(data_dir / "async-orders.sqlite3")
    streams = streams or RandomStreams(config.name)
    service = AsyncOrderService(config=config, registry=registry, store=store, broker=broker, streams=streams)
    app = base_app(registry, order_spec("async"), ready=service.connected)
    add_seed_routes(app, streams)
    app[ASYNC_KEY] = service
    app.cleanup_ctx.append(service.lifecycle)
    app.router.add_post("/orders", _post_order)
    app.router.add_get("/orders/{order_id}", _get_order)
    app.router.add_get("/ledger", _ledger)
    app.router.add_post("/ledger/check", _ledger_check)
    return app
