"""Metric definitions shared by the target processes.

Names come from :mod:`model.metric_names` (the Prometheus naming guide's prefix, base units and
``_total``); every metric has the ``lane`` label and otherwise only labels with small, fixed
value sets (dependency names come from the topology, outcomes from the enums below).  Each
process, and each test, builds its metrics on its own :class:`CollectorRegistry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily

from model import metric_names as names
from model.buckets import LATENCY_BUCKETS

__all__ = [
    "CALL_OUTCOMES",
    "LATENCY_BUCKETS",
    "LOCAL_OUTCOMES",
    "RETRY_DENIALS",
    "DownstreamServerMetrics",
    "OrderMetrics",
    "SyncChainMetrics",
    "WorkerMetrics",
]

FULFILLMENT_BUCKETS: tuple[float, ...] = (
    0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0,
    120.0, 180.0, 300.0, 600.0,
)  # fmt: skip

# How one attempt of a downstream call ended.
CALL_OUTCOMES: tuple[str, ...] = (
    "ok", "http_4xx", "http_5xx", "timeout", "connect_error", "circuit_open", "throttled",
    "deadline_exceeded",
)  # fmt: skip
# Attempts the client refused itself, never sent to the dependency: the breaker was open, the
# adaptive throttle rejected it, or the order's deadline had passed.
LOCAL_OUTCOMES: tuple[str, ...] = ("circuit_open", "throttled", "deadline_exceeded")
# Why a retry was not made although the failure was retryable (sync.retry.policy).
RETRY_DENIALS: tuple[str, ...] = ("budget", "token_bucket")


class OrderMetrics:
    """The order service's front door, on both lanes."""

    def __init__(self, registry: CollectorRegistry, lane: str) -> None:
        self.lane = lane
        self.requests = Counter(
            names.ORDER_REQUESTS,
            "Order API requests by HTTP status code.",
            ["lane", "method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            names.ORDER_REQUEST_DURATION,
            "Time to answer POST /orders (for async, the 202).",
            ["lane", "code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.fulfillment = Histogram(
            names.ORDER_FULFILLMENT,
            "Time from accepting an order to all its steps being done.",
            ["lane", "status"],
            buckets=FULFILLMENT_BUCKETS,
            registry=registry,
        )
        self.orders = Counter(
            names.ORDERS,
            "Orders by final or current state transition.",
            ["lane", "status"],
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            names.OUTBOX_BACKLOG,
            "Outbox rows not yet confirmed by the broker.",
            ["lane"],
            registry=registry,
        )
        self.outbox_published = Counter(
            names.OUTBOX_PUBLISHED,
            "Outbox rows published and confirmed by the broker.",
            ["lane"],
            registry=registry,
        )
        self.outbox_publish_failures = Counter(
            names.OUTBOX_PUBLISH_FAILURES,
            "Publish attempts the broker did not confirm.",
            ["lane"],
            registry=registry,
        )
        self.webhooks = Counter(
            names.ORDER_WEBHOOKS,
            "Webhook calls made when an order finished, by outcome.",
            ["lane", "outcome"],
            registry=registry,
        )


class SyncChainMetrics:
    """The sync lane's thread pool and the calls its threads make."""

    def __init__(self, registry: CollectorRegistry, lane: str) -> None:
        self.pool_size = Gauge(
            names.THREAD_POOL_SIZE, "Worker threads in the pool.", ["lane"], registry=registry
        )
        self.pool_busy = Gauge(
            names.THREAD_POOL_BUSY, "Threads running an order.", ["lane"], registry=registry
        )
        self.pool_queued = Gauge(
            names.THREAD_POOL_QUEUED, "Orders waiting for a thread.", ["lane"], registry=registry
        )
        self.pool_queue_limit = Gauge(
            names.THREAD_POOL_QUEUE_LIMIT, "Orders that may wait.", ["lane"], registry=registry
        )
        self.pool_rejected = Counter(
            names.THREAD_POOL_REJECTED,
            "Orders refused with 503 because every thread and queue slot was taken.",
            ["lane"],
            registry=registry,
        )
        self.calls = DownstreamCallMetrics(registry)


class DownstreamCallMetrics:
    """A client's view of its dependencies: attempts, retries, timeouts, latency, breaker."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            names.DOWNSTREAM_CALL_ATTEMPTS,
            "Attempts to call a dependency, by outcome.",
            ["lane", "dependency", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            names.DOWNSTREAM_CALL_RETRIES,
            "Attempts that were retries of an earlier failed attempt.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.retries_denied = Counter(
            names.DOWNSTREAM_RETRIES_DENIED,
            "Retries of a retryable failure not made, by the policy that denied them.",
            ["lane", "dependency", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            names.DOWNSTREAM_CALL_DURATION,
            "Duration of one attempt to call a dependency.",
            ["lane", "dependency"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.breaker_state = Gauge(
            names.CIRCUIT_BREAKER_STATE,
            "Circuit breaker per dependency: 0 closed, 1 half-open, 2 open.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.breaker_transitions = Counter(
            names.CIRCUIT_BREAKER_TRANSITIONS,
            "Breaker state changes, by the state entered.",
            ["lane", "dependency", "state"],
            registry=registry,
        )

    def declare(self, lane: str, dependencies: tuple[str, ...]) -> None:
        """Create every series at zero, so a dashboard shows 0, not "no data", until it moves."""
        for dep in dependencies:
            for outcome in CALL_OUTCOMES:
                self.attempts.labels(lane, dep, outcome)
            self.retries.labels(lane, dep)
            for reason in RETRY_DENIALS:
                self.retries_denied.labels(lane, dep, reason)


class DownstreamServerMetrics:
    """A downstream service's own view: its capacity, what it did, what it did twice."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            names.DOWNSTREAM_REQUESTS,
            "Requests a downstream service answered, by HTTP status code.",
            ["lane", "dependency", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            names.DOWNSTREAM_REQUEST_DURATION,
            "Time a downstream service took to answer, queueing included.",
            ["lane", "dependency"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inflight = Gauge(
            names.DOWNSTREAM_INFLIGHT,
            "Requests holding a capacity slot (including ones whose caller gave up).",
            ["lane", "dependency"],
            registry=registry,
        )
        self.queued = Gauge(
            names.DOWNSTREAM_QUEUED,
            "Requests waiting for a capacity slot.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.capacity = Gauge(
            names.DOWNSTREAM_CAPACITY,
            "Concurrent requests a downstream service can work on.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.rejected = Counter(
            names.DOWNSTREAM_REJECTED,
            "Requests refused with 503 because capacity and queue were full.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.abandoned = Counter(
            names.DOWNSTREAM_ABANDONED_WORK,
            "Work finished after its caller had already gone: wasted capacity.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.deadline_dropped = Counter(
            names.DOWNSTREAM_DEADLINE_DROPPED,
            "Requests answered 504 without their side effect because the caller's deadline "
            "(X-Deadline-Ms) passed before or during the work.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.side_effects = Counter(
            names.DOWNSTREAM_SIDE_EFFECTS,
            "Side effects applied (a charge, a deduction, an email sent).",
            ["lane", "dependency"],
            registry=registry,
        )
        self.duplicate_side_effects = Counter(
            names.DOWNSTREAM_DUPLICATE_SIDE_EFFECTS,
            "Side effects applied a second time for the same order.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.idempotent_replays = Counter(
            names.DOWNSTREAM_IDEMPOTENT_REPLAYS,
            "Requests answered from the idempotency store without doing the work again.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.duplicate_charges = Counter(
            names.PAYMENT_DUPLICATE_CHARGES,
            "Orders charged more than once by the payment service.",
            ["lane"],
            registry=registry,
        )


class WorkerMetrics:
    """An async worker: what it consumed, retried, redelivered and dead-lettered."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.processed = Counter(
            names.WORKER_MESSAGES_PROCESSED,
            "Messages a worker finished, by outcome.",
            ["lane", "dependency", "outcome"],
            registry=registry,
        )
        self.redelivered = Counter(
            names.WORKER_MESSAGES_REDELIVERED,
            "Messages the broker delivered again (a worker died or nacked).",
            ["lane", "dependency"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            names.WORKER_MESSAGES_DEAD_LETTERED,
            "Messages given up on after the last attempt.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.duplicates = Counter(
            names.WORKER_DUPLICATE_MESSAGES,
            "Messages for work already done, acknowledged without doing it again.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.out_of_order = Counter(
            names.WORKER_MESSAGES_OUT_OF_ORDER,
            "Orders received after a later order of the same customer (per-key order broken).",
            ["lane", "dependency"],
            registry=registry,
        )
        self.in_progress = Gauge(
            names.WORKER_MESSAGES_IN_PROGRESS,
            "Messages a worker holds unacknowledged.",
            ["lane", "dependency"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            names.BROKER_QUEUE_DEPTH,
            "Messages ready in the worker's queue, as the broker reports it.",
            ["lane", "queue"],
            registry=registry,
        )
        self.calls = DownstreamCallMetrics(registry)

    def declare(self, lane: str, dependency: str) -> None:
        for outcome in ("done", "dead_lettered", "duplicate"):
            self.processed.labels(lane, dependency, outcome)
        for counter in (self.redelivered, self.dead_lettered, self.duplicates, self.out_of_order):
            counter.labels(lane, dependency)
        self.in_progress.labels(lane, dependency).set(0)


class BrokerLoss:
    """``doorbuster_broker_messages_lost_total{lane}``: what the broker adapter counted as published to fewer
    consumers than are bound (Redis Pub/Sub), read at each scrape.  Every process that publishes
    serves it: the order service (order events) and each worker (its step events)."""

    def __init__(self, registry: CollectorRegistry, lane: str, lost: Callable[[], int]) -> None:
        self.lane, self.lost = lane, lost
        registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            names.BROKER_MESSAGES_LOST,
            "Messages the broker accepted but delivered to fewer consumers than are bound (Pub/Sub).",
            labels=["lane"],
        )
        family.add_metric([self.lane], float(self.lost()))
        yield family
