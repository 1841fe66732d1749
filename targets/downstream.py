"""A downstream service (payment, inventory, email, ...) with finite capacity.

It works for a log-normally spread time around its median latency, on at most
``concurrency`` requests at once, with at most ``queue`` more waiting; beyond that it answers
503 at once.  A request whose caller has given up keeps its slot until the work is done,
because real servers rarely notice: that wasted work is what turns retries into a storm.

It records every side effect per order, so duplicates are counted, not guessed: a request
with an ``idempotency_key`` it has seen is answered from its store (and waits for the first
one if that is still running); one without a key does the work again.

``/admin/faults`` adds the faults a TCP proxy can not make: an HTTP error rate with a status
code, and extra latency.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter as Tally
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from harness.settings import DependencySettings
from targets.metrics import DownstreamServerMetrics
from targets.openapi import downstream_spec
from targets.web import base_app, json_error, read_json_object

__all__ = ["DownstreamService", "HttpFaults", "build_downstream_app"]


@dataclass(frozen=True, kw_only=True)
class HttpFaults:
    error_rate: float = 0.0
    error_status: int = 500
    extra_latency_ms: float = 0.0
    extra_jitter_ms: float = 0.0
    delay_rate: float = 1.0  # the fraction of requests the extra latency applies to

    @classmethod
    def parse(cls, body: dict[str, Any]) -> HttpFaults:
        unknown = sorted(set(body) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
        faults = cls(**{k: body[k] for k in body})
        for name in ("error_rate", "extra_latency_ms", "extra_jitter_ms", "delay_rate"):
            value = getattr(faults, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name}: expected a number >= 0")
        if faults.error_rate > 1 or faults.delay_rate > 1:
            raise ValueError("error_rate and delay_rate: expected a number from 0 to 1")
        status = faults.error_status
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("error_status: expected an HTTP status from 400 to 599")
        return faults

    def as_dict(self) -> dict[str, float]:
        return {
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "extra_latency_ms": self.extra_latency_ms,
            "extra_jitter_ms": self.extra_jitter_ms,
            "delay_rate": self.delay_rate,
        }


class DownstreamService:
    """The service's state: capacity, faults, the idempotency store and the side-effect ledger."""

    def __init__(
        self,
        *,
        lane: str,
        dependency: str,
        settings: DependencySettings,
        time_scale: float,
        metrics: DownstreamServerMetrics,
        rng: random.Random | None = None,
    ) -> None:
        self.lane = lane
        self.dependency = dependency
        self.settings = settings
        self.time_scale = time_scale
        self.metrics = metrics
        self.faults = HttpFaults()
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._admitted = 0  # working or waiting for a slot
        self._inflight = 0
        self._results: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.applied: Tally[str] = Tally()
        metrics.capacity.labels(lane, dependency).set(settings.concurrency)
        metrics.rejected.labels(lane, dependency)
        metrics.duplicate_side_effects.labels(lane, dependency)
        if dependency == "payment":
            metrics.duplicate_charges.labels(lane)

    def work_seconds(self) -> float:
        """One request's service time: log-normal around the median, clipped to 0.2x-5x."""
        median = self.settings.latency_ms / 1000.0
        factor = math.exp(self._rng.gauss(0.0, self.settings.spread)) if self.settings.spread else 1
        seconds = median * min(max(factor, 0.2), 5.0) * self.time_scale
        faults = self.faults
        if faults.delay_rate < 1 and self._rng.random() >= faults.delay_rate:
            return seconds
        extra = faults.extra_latency_ms + self._rng.uniform(0, faults.extra_jitter_ms)
        return seconds + extra / 1000.0

    async def handle(self, order_id: str, idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        faults = self.faults
        if faults.error_rate and self._rng.random() < faults.error_rate:
            return faults.error_status, {"error": "injected_fault", "dependency": self.dependency}
        if idempotency_key is not None:
            earlier = self._results.get(idempotency_key)
            if earlier is not None:
                self.metrics.idempotent_replays.labels(self.lane, self.dependency).inc()
                return 200, {**(await asyncio.shield(earlier)), "replayed": True}
        # Admission is counted here, synchronously: requests arriving together must not all
        # see the capacity as free before any of their tasks has started.
        if self._admitted >= self.settings.concurrency + self.settings.queue:
            self.metrics.rejected.labels(self.lane, self.dependency).inc()
            return 503, {"error": "over_capacity", "dependency": self.dependency}
        self._admitted += 1
        if idempotency_key is not None:
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._results[idempotency_key] = future
        # The work runs in its own task: if the caller disconnects, the slot stays taken
        # until the work is done, and the side effect still happens.
        work = asyncio.ensure_future(self._work(order_id))
        if idempotency_key is not None:
            work.add_done_callback(lambda t: _settle(future, t))
        result = await asyncio.shield(work)
        return 200, result

    async def _work(self, order_id: str) -> dict[str, Any]:
        labels = (self.lane, self.dependency)
        self.metrics.queued.labels(*labels).set(self._admitted - self._inflight)
        try:
            async with self._slots:
                self._inflight += 1
                self._publish_load()
                try:
                    await asyncio.sleep(self.work_seconds())
                finally:
                    self._inflight -= 1
                self.applied[order_id] += 1
                self.metrics.side_effects.labels(*labels).inc()
                if self.applied[order_id] > 1:
                    self.metrics.duplicate_side_effects.labels(*labels).inc()
                    if self.dependency == "payment":
                        self.metrics.duplicate_charges.labels(self.lane).inc()
                return {
                    "order_id": order_id,
                    "dependency": self.dependency,
                    "applied": self.applied[order_id],
                }
        finally:
            self._admitted -= 1
            self._publish_load()

    def _publish_load(self) -> None:
        labels = (self.lane, self.dependency)
        self.metrics.inflight.labels(*labels).set(self._inflight)
        self.metrics.queued.labels(*labels).set(self._admitted - self._inflight)

    def ledger(self) -> dict[str, Any]:
        duplicates = {oid: n for oid, n in self.applied.items() if n > 1}
        return {
            "lane": self.lane,
            "dependency": self.dependency,
            "orders": len(self.applied),
            "side_effects": sum(self.applied.values()),
            "duplicated_orders": len(duplicates),
        }


def _settle(future: asyncio.Future[dict[str, Any]], task: asyncio.Task[dict[str, Any]]) -> None:
    if future.done():
        return
    if task.cancelled():
        future.cancel()
    elif task.exception() is not None:
        future.set_exception(task.exception())  # type: ignore[arg-type]
    else:
        future.set_result(task.result())


SERVICE_KEY = web.AppKey("service", DownstreamService)


async def _work_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    started = time.perf_counter()
    body = await read_json_object(request)
    order_id = body.get("order_id")
    key = body.get("idempotency_key")
    if not isinstance(order_id, str) or not order_id or len(order_id) > 128:
        status, payload = 422, {"error": "invalid", "detail": "order_id: expected a string"}
    elif key is not None and (not isinstance(key, str) or not key or len(key) > 256):
        status, payload = 422, {"error": "invalid", "detail": "idempotency_key: expected a string"}
    else:
        status, payload = await service.handle(order_id, key)
    labels = (service.lane, service.dependency)
    service.metrics.requests.labels(*labels, str(status)).inc()
    service.metrics.duration.labels(*labels).observe(time.perf_counter() - started)
    if request.transport is None or request.transport.is_closing():
        service.metrics.abandoned.labels(*labels).inc()
    return web.json_response(payload, status=status)


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE_KEY].faults.as_dict())


async def _set_faults(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    try:
        service.faults = HttpFaults.parse(await read_json_object(request))
    except (TypeError, ValueError) as exc:
        return json_error(422, "invalid_faults", detail=str(exc))
    return web.json_response(service.faults.as_dict())


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[SERVICE_KEY].faults = HttpFaults()
    return web.json_response(HttpFaults().as_dict())


async def _ledger(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    order_id = request.query.get("order_id")
    if order_id is not None:
        return web.json_response({"order_id": order_id, "applied": service.applied[order_id]})
    return web.json_response(service.ledger())


async def _ledger_check(request: web.Request) -> web.Response:
    """POST {"order_ids": [...]} -> how many times each order's side effect was applied."""
    body = await read_json_object(request)
    ids = body.get("order_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return json_error(422, "invalid", detail="order_ids: expected a list of strings")
    applied = request.app[SERVICE_KEY].applied
    return web.json_response({"applied": {i: applied.get(i, 0) for i in ids}})


def build_downstream_app(
    *,
    lane: str,
    dependency: str,
    settings: DependencySettings,
    time_scale: float,
    registry: CollectorRegistry,
    rng: random.Random | None = None,
) -> web.Application:
    app = base_app(registry, downstream_spec(dependency))
    app[SERVICE_KEY] = DownstreamService(
        lane=lane,
        dependency=dependency,
        settings=settings,
        time_scale=time_scale,
        metrics=DownstreamServerMetrics(registry),
        rng=rng,
    )
    app.router.add_post("/work", _work_handler)
    app.router.add_get("/admin/faults", _get_faults)
    app.router.add_put("/admin/faults", _set_faults)
    app.router.add_delete("/admin/faults", _clear_faults)
    app.router.add_get("/ledger", _ledger)
    app.router.add_post("/ledger/check", _ledger_check)
    return app
