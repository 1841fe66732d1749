"""A downstream service (payment, inventory, email, ...) with finite capacity.

It works for a log-normally spread time around its median latency, on at most
``concurrency`` requests at once, with at most ``queue`` more waiting; beyond that it answers
503 at once.  A request whose caller has given up keeps its slot until the work is done,
because real servers rarely notice: that wasted work is what turns retries into a storm.
Unless the caller said how long it waits (``X-Deadline-Ms``, the sync lane's ``deadline``
policy): then work whose time is up is dropped, with a 504 and no side effect, when it gets
its slot or, mid-work, at the deadline.

It records every side effect per order in its SQLite ledger, so duplicates are counted, not
guessed: a request with an ``idempotency_key`` it has seen is answered from its ledger (and
waits for the first one if that is still running); one without a key does the work again.

``/admin/faults`` adds the faults a TCP proxy can not make: an HTTP error rate with a status
code, and extra latency.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from model.headers import DEADLINE_HEADER
from model.settings import DependencySettings
from targets.db import connect, select_in
from targets.metrics import DownstreamServerMetrics
from targets.openapi import downstream_spec
from targets.random_streams import RandomStreams, add_seed_routes
from targets.resilience import parse_deadline_ms
from targets.web import RequestRefused, base_app, json_error, read_json_object

__all__ = ["DownstreamService", "HttpFaults", "SideEffectLedger", "build_downstream_app"]


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


_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS applied (order_id TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS answers (idempotency_key TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


class SideEffectLedger:
    """How many times each order's side effect was applied, and the answer given to each
    idempotency key, in the service's SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self.db = connect(path, schema=_LEDGER_SCHEMA)

    def apply(self, order_id: str) -> int:
        """Count one more side effect for ``order_id``; how many it has had now."""
        row = self.db.execute(
            "INSERT INTO applied VALUES (?, 1) ON CONFLICT (order_id) DO UPDATE SET n = n + 1 RETURNING n",
            (order_id,),
        ).fetchone()
        return int(row[0])

    def applied(self, order_id: str) -> int:
        row = self.db.execute("SELECT n FROM applied WHERE order_id = ?", (order_id,)).fetchone()
        return int(row[0]) if row else 0

    def applied_many(self, order_ids: list[str]) -> dict[str, int]:
        found = dict.fromkeys(order_ids, 0)
        query = "SELECT order_id, n FROM applied WHERE order_id IN ({keys})"
        found.update(select_in(self.db, query, order_ids))
        return found

    def totals(self) -> tuple[int, int, int]:
        """Orders, side effects, and orders with more than one."""
        orders, effects, duplicated = self.db.execute(
            "SELECT COUNT(*), SUM(n), SUM(n > 1) FROM applied"
        ).fetchone()
        return int(orders), int(effects or 0), int(duplicated or 0)

    def remember(self, idempotency_key: str, answer: dict[str, Any]) -> None:
        self.db.execute("INSERT OR IGNORE INTO answers VALUES (?, ?)", (idempotency_key, json.dumps(answer)))

    def result(self, idempotency_key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT body FROM answers WHERE idempotency_key = ?", (idempotency_key,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self.db.close()


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
        ledger: SideEffectLedger | None = None,
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
        self.ledger = ledger or SideEffectLedger()
        # Idempotency keys whose work is running; finished ones are answered from the ledger.
        # A task's result is None when it dropped its work at the caller's deadline.
        self._running: dict[str, asyncio.Task[dict[str, Any] | None]] = {}
        metrics.capacity.labels(lane, dependency).set(settings.concurrency)
        metrics.rejected.labels(lane, dependency)
        metrics.deadline_dropped.labels(lane, dependency)
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

    async def handle(
        self, order_id: str, idempotency_key: str | None, deadline: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        """``deadline``: when the caller stops waiting (``time.monotonic()``), if it said."""
        faults = self.faults
        if faults.error_rate and self._rng.random() < faults.error_rate:
            return faults.error_status, {"error": "injected_fault", "dependency": self.dependency}
        if idempotency_key is not None:
            running = self._running.get(idempotency_key)
            earlier = await asyncio.shield(running) if running is not None else None
            if earlier is None:
                earlier = self.ledger.result(idempotency_key)
            if earlier is not None:
                self.metrics.idempotent_replays.labels(self.lane, self.dependency).inc()
                return 200, {**earlier, "replayed": True}
        if deadline is not None and time.monotonic() >= deadline:
            return self._dropped()
        # Admission is counted here, synchronously: requests arriving together must not all
        # see the capacity as free before any of their tasks has started.
        if self._admitted >= self.settings.concurrency + self.settings.queue:
            self.metrics.rejected.labels(self.lane, self.dependency).inc()
            return 503, {"error": "over_capacity", "dependency": self.dependency}
        self._admitted += 1
        # The work runs in its own task: if the caller disconnects, the slot stays taken
        # until the work is done and the side effect still happens (unless the caller's
        # deadline comes first).
        work = asyncio.ensure_future(self._work(order_id, idempotency_key, deadline))
        if idempotency_key is not None:
            self._running[idempotency_key] = work
        result = await asyncio.shield(work)
        return (200, result) if result is not None else self._dropped()

    def _dropped(self) -> tuple[int, dict[str, Any]]:
        self.metrics.deadline_dropped.labels(self.lane, self.dependency).inc()
        return 504, {"error": "deadline_exceeded", "dependency": self.dependency}

    async def _work(
        self, order_id: str, idempotency_key: str | None, deadline: float | None
    ) -> dict[str, Any] | None:
        """The work and its side effect; ``None`` if the deadline came first (no side effect)."""
        labels = (self.lane, self.dependency)
        self.metrics.queued.labels(*labels).set(self._admitted - self._inflight)
        try:
            async with self._slots:
                seconds = self.work_seconds()
                left = math.inf if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    return None
                self._inflight += 1
                self._publish_load()
                try:
                    await asyncio.sleep(min(seconds, left))
                finally:
                    self._inflight -= 1
                if seconds > left:
                    return None
                applied = self.ledger.apply(order_id)
                self.metrics.side_effects.labels(*labels).inc()
                if applied > 1:
                    self.metrics.duplicate_side_effects.labels(*labels).inc()
                    if self.dependency == "payment":
                        self.metrics.duplicate_charges.labels(self.lane).inc()
                result = {"order_id": order_id, "dependency": self.dependency, "applied": applied}
                if idempotency_key is not None:
                    self.ledger.remember(idempotency_key, result)
                return result
        finally:
            self._admitted -= 1
            self._publish_load()
            if idempotency_key is not None:
                self._running.pop(idempotency_key, None)

    def _publish_load(self) -> None:
        labels = (self.lane, self.dependency)
        self.metrics.inflight.labels(*labels).set(self._inflight)
        self.metrics.queued.labels(*labels).set(self._admitted - self._inflight)

    def summary(self) -> dict[str, Any]:
        orders, side_effects, duplicated = self.ledger.totals()
        return {
            "lane": self.lane,
            "dependency": self.dependency,
            "orders": orders,
            "side_effects": side_effects,
            "duplicated_orders": duplicated,
        }


SERVICE_KEY = web.AppKey("service", DownstreamService)


def _deadline(request: web.Request) -> float | None:
    """When the caller stops waiting, from its ``X-Deadline-Ms``, on this process's clock."""
    text = request.headers.get(DEADLINE_HEADER)
    if text is None:
        return None
    try:
        return time.monotonic() + parse_deadline_ms(text) / 1000.0
    except ValueError as exc:
        raise RequestRefused(400, "invalid_deadline", str(exc)) from exc


async def _work_handler(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    started = time.perf_counter()
    deadline = _deadline(request)
    body = await read_json_object(request)
    order_id = body.get("order_id")
    key = body.get("idempotency_key")
    if not isinstance(order_id, str) or not order_id or len(order_id) > 128:
        status, payload = 422, {"error": "invalid", "detail": "order_id: expected a string"}
    elif key is not None and (not isinstance(key, str) or not key or len(key) > 256):
        status, payload = 422, {"error": "invalid", "detail": "idempotency_key: expected a string"}
    else:
        status, payload = await service.handle(order_id, key, deadline)
    labels = (service.lane, service.dependency)
    service.metrics.requests.labels(*labels, str(status)).inc()
    service.metrics.duration.labels(*labels).observe(time.perf_counter() - started)
    dropped = payload.get("error") == "deadline_exceeded"
    if not dropped and (request.transport is None or request.transport.is_closing()):
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
        return web.json_response({"order_id": order_id, "applied": service.ledger.applied(order_id)})
    return web.json_response(service.summary())


async def _ledger_check(request: web.Request) -> web.Response:
    """POST {"order_ids": [...]} -> how many times each order's side effect was applied."""
    body = await read_json_object(request)
    ids = body.get("order_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return json_error(422, "invalid", detail="order_ids: expected a list of strings")
    return web.json_response({"applied": request.app[SERVICE_KEY].ledger.applied_many(ids)})


def build_downstream_app(
    *,
    lane: str,
    dependency: str,
    settings: DependencySettings,
    time_scale: float,
    registry: CollectorRegistry,
    streams: RandomStreams | None = None,
    data_dir: Path | None = None,
) -> web.Application:
    """``data_dir``: where the service keeps its ledger; ``None`` keeps it in memory (tests).
    ``streams``: the process's random draws (its own, on seed 0, if not given); the service
    time's spread, the HTTP faults' error draws and extra jitter come from its ``work`` stream."""
    app = base_app(registry, downstream_spec(dependency))
    streams = streams or RandomStreams(f"downstream-{lane}-{dependency}")
    add_seed_routes(app, streams)
    ledger = SideEffectLedger(
        data_dir / f"downstream-{lane}-{dependency}.sqlite3" if data_dir is not None else ":memory:"
    )
    app[SERVICE_KEY] = DownstreamService(
        lane=lane,
        dependency=dependency,
        settings=settings,
        time_scale=time_scale,
        metrics=DownstreamServerMetrics(registry),
        rng=streams.stream("work"),
        ledger=ledger,
    )

    async def _close(app: web.Application) -> None:
        ledger.close()

    app.on_cleanup.append(_close)
    app.router.add_post("/work", _work_handler)
    app.router.add_get("/admin/faults", _get_faults)
    app.router.add_put("/admin/faults", _set_faults)
    app.router.add_delete("/admin/faults", _clear_faults)
    app.router.add_get("/ledger", _ledger)
    app.router.add_post("/ledger/check", _ledger_check)
    return app
