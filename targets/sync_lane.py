"""The sync lane: one order runs the whole checkout chain on a thread of a bounded pool.

An aiohttp front admits an order only while a thread or a wait-queue slot is free (else 503
at once); the order then occupies its thread while it calls payment, inventory, warehouse,
email and analytics one after another through Toxiproxy with a blocking, pooled HTTP client:
a per-call timeout, retries with back-off and an optional circuit breaker.  A slow dependency
therefore holds threads, the queue fills and the front refuses work: the seed's cascade.

Like the seed's naive chain, the lane ignores a client's ``idempotency_key`` unless
``sync.idempotency_keys`` is on; then it claims the key before the chain runs, as the async
lane does (``targets.idempotency``), and sends each dependency a key of its own.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import urllib3
from aiohttp import web
from prometheus_client import CollectorRegistry

from model.headers import DEADLINE_HEADER
from model.target_config import TargetConfig
from targets.db import connect
from targets.idempotency import AttemptInFlight, Claim, ClaimOutcome, KeyClaims, RunningAttempts
from targets.metrics import OrderMetrics, SyncChainMetrics
from targets.openapi import order_spec
from targets.orders import InvalidOrder, OrderRequest, parse_order
from targets.random_streams import RandomStreams, add_seed_routes
from targets.resilience import (
    BreakerState,
    CallFailed,
    CircuitBreaker,
    DependencyRetryPolicy,
    attempt_timeout_s,
    deadline_header_value,
    longest_call_s,
    outcome_for_status,
    parse_deadline_ms,
    retryable,
)
from targets.web import RequestRefused, base_app, json_error, read_json_object

__all__ = ["BlockingDependencyClient", "SyncOrderService", "SyncOrders", "build_sync_app"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS confirmed_keys (idempotency_key TEXT PRIMARY KEY, order_id TEXT NOT NULL);
"""


class SyncOrders:
    """Every finished order, in the service's SQLite file (``:memory:`` for tests); pool
    threads write and the event loop reads, so every call takes the store's lock."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self.db = connect(path, schema=_SCHEMA, threads=True)
        self.claims = KeyClaims(
            self.db, settled_query="SELECT order_id FROM confirmed_keys WHERE idempotency_key = ?"
        )
        self._lock = threading.Lock()
        self._closed = False

    def claim(self, idempotency_key: str, order_id: str, *, lease_s: float) -> Claim:
        """Claim a client's key before the chain runs (see ``KeyClaims.claim``)."""
        with self._lock:
            return self.claims.claim(idempotency_key, order_id, lease_s=lease_s)

    def release(self, idempotency_key: str, order_id: str) -> None:
        """The attempt ended without an order: a retry with the key may run."""
        with self._lock:
            if not self._closed:
                self.claims.release(idempotency_key, order_id)

    def put(self, record: dict[str, Any], idempotency_key: str | None) -> None:
        """Store a finished order; a confirmed one settles its key, a failed one releases it."""
        with self._lock:
            if not self._closed:  # a pool thread may finish its order after shutdown
                self._put(record, idempotency_key)

    def _put(self, record: dict[str, Any], idempotency_key: str | None) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT OR REPLACE INTO orders VALUES (?, ?)", (record["order_id"], json.dumps(record))
            )
            if idempotency_key is None:
                return
            if record["status"] == "confirmed":
                self.db.execute(
                    "INSERT OR REPLACE INTO confirmed_keys VALUES (?, ?)",
                    (idempotency_key, record["order_id"]),
                )
                self.claims.settle(idempotency_key)
            else:
                self.claims.release(idempotency_key, record["order_id"])

    def get(self, order_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT record FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def confirmed(self, idempotency_key: str) -> dict[str, Any] | None:
        """The confirmed order an idempotency key made, if any."""
        with self._lock:
            row = self.db.execute(
                "SELECT record FROM orders JOIN confirmed_keys USING (order_id) WHERE idempotency_key = ?",
                (idempotency_key,),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.db.close()


class BlockingDependencyClient:
    """Calls one lane's dependencies through their proxies, from pool threads, under the
    retry policy ``sync.retry.policy`` names (one :class:`DependencyRetryPolicy` per
    dependency).  Under ``deadline`` each attempt carries its remaining time in
    ``X-Deadline-Ms``, and none starts once the order's own deadline has passed."""

    def __init__(
        self,
        *,
        config: TargetConfig,
        metrics: SyncChainMetrics,
        clock: Callable[[], float] = time.monotonic,
        streams: RandomStreams | None = None,
    ) -> None:
        """``streams``: the process's random draws; each dependency's back-off jitter and
        adaptive throttle draw from streams of their own (``retry/DEP``, ``throttle/DEP``)."""
        settings = config.settings
        self.lane = lane = config.lane
        self.metrics = metrics.calls
        self.retry = settings.sync.retry
        self.time_scale = settings.time_scale
        self.timeout_s = settings.scaled(settings.sync.timeout_s)
        self.urls = {dep: config.dependency_url(dep) for dep in settings.chain}
        self.http = urllib3.PoolManager(
            num_pools=len(self.urls) + 1, maxsize=settings.sync.threads, block=False, retries=False
        )
        self.clock = clock
        streams = streams or RandomStreams(config.name)
        self.policies = {
            dep: DependencyRetryPolicy(
                self.retry,
                CircuitBreaker(
                    settings.sync.breaker_applied,
                    time_scale=settings.time_scale,
                    clock=clock,
                    on_change=self._breaker_gauge(dep),
                ),
                time_scale=settings.time_scale,
                clock=clock,
                rng=streams.stream(f"retry/{dep}"),
                throttle_rng=streams.stream(f"throttle/{dep}"),
            )
            for dep in settings.chain
        }
        for dep in settings.chain:
            self.metrics.breaker_state.labels(lane, dep).set(BreakerState.CLOSED)
        self.metrics.declare(lane, tuple(settings.chain))

    def _breaker_gauge(self, dep: str) -> Any:
        def changed(state: BreakerState) -> None:
            self.metrics.breaker_state.labels(self.lane, dep).set(int(state))
            self.metrics.breaker_transitions.labels(self.lane, dep, state.name.lower()).inc()

        return changed

    def call(self, dep: str, payload: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
        """POST ``payload`` to ``dep``; returns its JSON or raises :class:`CallFailed`.

        ``deadline``: the order's, a time of this client's clock, applied only under the
        ``deadline`` policy."""
        policy = self.policies[dep]
        call = policy.start()
        body = json.dumps(payload).encode()
        if not policy.propagates_deadline:
            deadline = None
        for attempt in range(1, policy.attempts + 1):
            if attempt > 1:
                self.metrics.retries.labels(self.lane, dep).inc()
            timeout_s = attempt_timeout_s(self.timeout_s, deadline, self.clock())
            if timeout_s <= 0:
                self._refused(dep, "deadline_exceeded", attempt, "the order's deadline has passed")
            refusal = policy.refusal()
            if refusal is not None:
                self._refused(dep, refusal, attempt, _REFUSALS[refusal])
            headers = {"Content-Type": "application/json"}
            if policy.propagates_deadline:
                headers[DEADLINE_HEADER] = deadline_header_value(timeout_s)
            outcome, detail, response = self._attempt(dep, body, headers, timeout_s)
            policy.record(call, outcome)
            if outcome == "ok" and response is not None:
                result: dict[str, Any] = json.loads(response.data or b"{}")
                return result
            if not retryable(outcome) or attempt == policy.attempts:
                raise CallFailed(dep, outcome, attempt, detail)
            denial = policy.retry_denial(call, outcome)
            if denial is not None:
                self.metrics.retries_denied.labels(self.lane, dep, denial).inc()
                raise CallFailed(
                    dep, outcome, attempt, f"{detail}; retry denied by the {denial.replace('_', ' ')}"
                )
            delay = policy.backoff_s(attempt)
            if deadline is not None and self.clock() + delay >= deadline:
                # The retry would start after the order's deadline: free the thread now.
                self.metrics.retries.labels(self.lane, dep).inc()
                self._refused(
                    dep, "deadline_exceeded", attempt + 1, "the order's deadline passes before the retry"
                )
            time.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def _refused(self, dep: str, outcome: str, attempt: int, detail: str) -> NoReturn:
        """An attempt this client will not send: counted under its outcome, the call fails."""
        self.metrics.attempts.labels(self.lane, dep, outcome).inc()
        raise CallFailed(dep, outcome, attempt, detail)

    def _attempt(
        self, dep: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[str, str, urllib3.BaseHTTPResponse | None]:
        started = time.perf_counter()
        response: urllib3.BaseHTTPResponse | None = None
        try:
            response = self.http.request(
                "POST", self.urls[dep], body=body, headers=headers, timeout=urllib3.Timeout(total=timeout_s)
            )
            outcome, detail = outcome_for_status(response.status), f"HTTP {response.status}"
        except urllib3.exceptions.NewConnectionError as exc:
            # Checked first: urllib3 makes a refused connection a kind of ConnectTimeoutError.
            outcome, detail = "connect_error", type(exc).__name__
        except urllib3.exceptions.TimeoutError:
            outcome, detail = "timeout", f"no answer in {timeout_s:g}s"
        except urllib3.exceptions.HTTPError as exc:
            outcome, detail = "connect_error", type(exc).__name__
        self.metrics.latency.labels(self.lane, dep).observe(time.perf_counter() - started)
        self.metrics.attempts.labels(self.lane, dep, outcome).inc()
        return outcome, detail, response


_REFUSALS = {"circuit_open": "circuit breaker is open", "throttled": "rejected by the adaptive throttle"}


class SyncOrderService:
    """The bounded pool, the admission rule and the orders it remembers."""

    def __init__(
        self,
        *,
        config: TargetConfig,
        registry: CollectorRegistry,
        orders: SyncOrders | None = None,
        streams: RandomStreams | None = None,
    ) -> None:
        settings = config.settings
        self.lane = config.lane
        self.chain = tuple(settings.chain)
        self.idempotency_keys = settings.sync.idempotency_keys
        self.threads = settings.sync.threads
        self.capacity = settings.sync.threads + settings.sync.queue
        self.metrics = SyncChainMetrics(registry, self.lane)
        self.order_metrics = OrderMetrics(registry, self.lane)
        self.client = BlockingDependencyClient(config=config, metrics=self.metrics, streams=streams)
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="order")
        self._lock = threading.Lock()
        self._admitted = 0
        self._busy = 0
        self.orders = orders or SyncOrders()
        # A claim outlives its attempt only if this process died during it (see async_lane).
        self.claim_lease_s = (
            2
            * len(self.chain)
            * longest_call_s(settings.sync.retry, self.client.timeout_s, settings.time_scale)
        )
        self.attempts: RunningAttempts[tuple[int, dict[str, Any]]] = RunningAttempts()
        self.metrics.pool_size.labels(self.lane).set(self.threads)
        self.metrics.pool_queue_limit.labels(self.lane).set(settings.sync.queue)
        self.metrics.pool_rejected.labels(self.lane)  # a zero is a fact, not a missing series
        self._publish_pool()

    def _publish_pool(self) -> None:
        self.metrics.pool_busy.labels(self.lane).set(self._busy)
        self.metrics.pool_queued.labels(self.lane).set(self._admitted - self._busy)

    def try_admit(self) -> bool:
        with self._lock:
            if self._admitted >= self.capacity:
                self.metrics.pool_rejected.labels(self.lane).inc()
                return False
            self._admitted += 1
            self._publish_pool()
            return True

    def run_order(
        self, order_id: str, order: OrderRequest, deadline: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Runs on a pool thread: the whole chain, in order; the first failure ends it.
        ``deadline``: when the shopper stops waiting (monotonic), if it said."""
        with self._lock:
            self._busy += 1
            self._publish_pool()
        steps = dict.fromkeys(self.chain, "pending")
        started = time.time()
        try:
            for dep in self.chain:
                payload: dict[str, Any] = {"order_id": order_id}
                if self.idempotency_keys:
                    payload["idempotency_key"] = f"{order_id}:{dep}"
                try:
                    self.client.call(dep, payload, deadline)
                except CallFailed as failure:
                    steps[dep] = "failed"
                    record = self._remember(order_id, order, "failed", steps, started)
                    return failure.http_status, {**record, **failure.as_json()}
                steps[dep] = "done"
            return 200, self._remember(order_id, order, "confirmed", steps, started)
        finally:
            with self._lock:
                self._busy -= 1
                self._admitted -= 1
                self._publish_pool()

    def _remember(
        self,
        order_id: str,
        order: OrderRequest,
        status: str,
        steps: dict[str, str],
        started: float,
    ) -> dict[str, Any]:
        record = {
            "order_id": order_id,
            "status": status,
            "steps": dict(steps),
            **order.to_json(),
            "created_at": started,
            "finished_at": time.time(),
        }
        self.order_metrics.orders.labels(self.lane, status).inc()
        self.orders.put(record, self.claimed_key(order))
        return record

    def claimed_key(self, order: OrderRequest) -> str | None:
        """The client's key, if this lane honours keys (``sync.idempotency_keys``)."""
        return order.idempotency_key if self.idempotency_keys else None

    async def attempt(
        self, order_id: str, order: OrderRequest, deadline: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Admit the order and run its chain on the pool; a refused or broken attempt
        releases its key (a finished one settled or released it as it was stored)."""
        key = self.claimed_key(order)
        if not self.try_admit():
            if key is not None:
                self.orders.release(key, order_id)
            return 503, {
                "error": "pool_exhausted",
                "detail": f"{self.capacity} orders already running or waiting",
            }
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, self.run_order, order_id, order, deadline)
        except BaseException:
            if key is not None:
                self.orders.release(key, order_id)
            raise

    async def duplicate(self, key: str, claim: Claim) -> tuple[int, dict[str, Any]]:
        """The answer to a request whose key an earlier attempt claimed: that attempt's."""
        if claim.outcome is ClaimOutcome.RUNNING:
            running = self.attempts.get(key)
            if running is None:  # a crashed process's claim, until its lease runs out
                refused = AttemptInFlight(claim.order_id)
                return refused.http_status, refused.as_json()
            status, body = await running
            if status != 200:
                return status, body
        record = self.orders.get(claim.order_id)
        if record is None:
            raise RuntimeError(f"order {claim.order_id} settled a key but is not stored")
        return 200, {**record, "replayed": True}

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.orders.close()


SYNC_KEY = web.AppKey("sync_service", SyncOrderService)


def _observe(service: SyncOrderService, started: float, status: int) -> None:
    metrics = service.order_metrics
    metrics.requests.labels(service.lane, "POST", str(status)).inc()
    metrics.latency.labels(service.lane, str(status)).observe(time.perf_counter() - started)


def _order_deadline(service: SyncOrderService, request: web.Request) -> float | None:
    """When the shopper stops waiting (its ``X-Deadline-Ms`` from now, on the dependency
    client's clock), under the ``deadline`` policy; other policies ignore the header, as the
    seed's chain does."""
    text = request.headers.get(DEADLINE_HEADER)
    if text is None or service.client.retry.policy != "deadline":
        return None
    try:
        return service.client.clock() + parse_deadline_ms(text) / 1000.0
    except ValueError as exc:
        raise RequestRefused(400, "invalid_deadline", str(exc)) from exc


async def _post_order(request: web.Request) -> web.Response:
    service = request.app[SYNC_KEY]
    started = time.perf_counter()
    try:
        deadline = _order_deadline(service, request)
        order = parse_order(await read_json_object(request))
    except InvalidOrder as exc:
        _observe(service, started, 422)
        return json_error(422, "invalid_order", detail=str(exc))
    except RequestRefused as exc:
        _observe(service, started, exc.status)
        return exc.response()
    key = service.claimed_key(order)
    if key is None:
        order_id = uuid.uuid4().hex
        status, body = await service.attempt(order_id, order, deadline)
    else:
        claim = service.orders.claim(key, uuid.uuid4().hex, lease_s=service.claim_lease_s)
        order_id = claim.order_id
        if claim.outcome is ClaimOutcome.WON:
            status, body = await service.attempts.run(key, service.attempt(order_id, order, deadline))
        else:
            status, body = await service.duplicate(key, claim)
    _observe(service, started, status)
    # A refused order (503, 409) is not stored: there is nothing to point at.
    headers = {"Location": f"/orders/{order_id}"} if status not in (409, 503) else {}
    return web.json_response(body, status=status, headers=headers)


async def _get_order(request: web.Request) -> web.Response:
    service = request.app[SYNC_KEY]
    record = service.orders.get(request.match_info["order_id"])
    if record is None:
        return json_error(404, "not_found")
    status = "fulfilled" if record["status"] == "confirmed" else "failed"
    return web.json_response({**record, "status": status})


async def _pool(request: web.Request) -> web.Response:
    service = request.app[SYNC_KEY]
    return web.json_response(
        {"threads": service.threads, "capacity": service.capacity, "busy": service._busy}
    )


def build_sync_app(
    *,
    config: TargetConfig,
    registry: CollectorRegistry,
    data_dir: Path | None = None,
    streams: RandomStreams | None = None,
) -> web.Application:
    """``data_dir``: where the service keeps its orders; ``None`` keeps them in memory (tests).
    ``streams``: the process's random draws (its own, on seed 0, if not given)."""
    app = base_app(registry, order_spec("sync"))
    orders = SyncOrders(data_dir / "sync-orders.sqlite3" if data_dir is not None else ":memory:")
    streams = streams or RandomStreams(config.name)
    service = SyncOrderService(config=config, registry=registry, orders=orders, streams=streams)
    add_seed_routes(app, streams)
    app[SYNC_KEY] = service

    async def _stop(app: web.Application) -> None:
        service.shutdown()

    app.on_cleanup.append(_stop)
    app.router.add_post("/orders", _post_order)
    app.router.add_get("/orders/{order_id}", _get_order)
    app.router.add_get("/admin/pool", _pool)
    return app
