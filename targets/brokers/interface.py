"""The broker interface the async lane uses: :class:`Broker`, its messages and their names.

The order service publishes ``order.confirmed`` events to the topic exchange ``orders``; each
worker reads its own durable queue bound to that key; workers publish ``order.step.<dep>``
events back, which the order service reads to track fulfilment.

Each broker (RabbitMQ, Redis Streams and Pub/Sub, Kafka, SQS) implements :class:`Broker` in a
module of its own beside this one, saying what its broker promises and what it does not; each
imports only this module.  ``targets.brokers.make_broker`` picks one by name.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "EXCHANGE",
    "ORDER_CONFIRMED",
    "STATUS_QUEUE",
    "Broker",
    "BrokerUnavailable",
    "Delivery",
    "Handler",
    "Message",
    "describe",
    "step_routing_key",
    "worker_queue",
]

log = logging.getLogger(__name__)

EXCHANGE = "orders"
DEAD_LETTER_EXCHANGE = "orders.dead-letter"
ORDER_CONFIRMED = "order.confirmed"
STATUS_QUEUE = "order-status"


def step_routing_key(dependency: str) -> str:
    return f"order.step.{dependency}"


def worker_queue(dependency: str) -> str:
    return f"worker.{dependency}"


def describe(exc: BaseException) -> str:
    """An error's class and message: redis-py 8's ``repr`` drops the message (it prints
    ``network:ConnectionError``), and the message is what says which connection failed and why."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class BrokerUnavailable(Exception):
    """The broker did not take or confirm a message (down, unreachable, or too slow)."""


@dataclass(frozen=True, kw_only=True)
class Message:
    message_id: str
    routing_key: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ordering_key(self) -> str:
        """Messages with one key keep their order where the broker promises that (Kafka: one
        key, one partition).  The order service keys an order's events by its customer."""
        return self.headers.get("ordering_key") or self.message_id


@dataclass(kw_only=True)
class Delivery:
    """A message handed to a consumer, which must settle it exactly once."""

    message: Message
    redelivered: bool
    ack: Callable[[], Awaitable[None]]
    dead_letter: Callable[[], Awaitable[None]]
    requeue: Callable[[], Awaitable[None]]


Handler = Callable[[Delivery], Awaitable[None]]


class Broker(abc.ABC):
    """What the async lane needs of a broker, whichever it is."""

    name: str
    # Messages the broker is known to have dropped (Redis Pub/Sub: published, nobody listening).
    lost_messages: int = 0

    def __init__(self) -> None:
        # The adapter's own tasks (consumer loops, handlers); its loops end once _stopping is set.
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stop_tasks(self, grace_s: float = 0.0) -> None:
        """Stop the adapter's tasks: those that end by themselves within ``grace_s`` (they see
        ``_stopping``) do; the rest are cancelled, and waited for a little."""
        self._stopping = True
        pending = set(self._tasks)
        if pending and grace_s > 0:
            _, pending = await asyncio.wait(pending, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=3)

    async def _poll(
        self, label: str, errors: tuple[type[BaseException], ...], once: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``once`` again and again until the adapter stops; a broker error backs off from
        0.2 s, doubling up to 5 s, so a broker that is away is not hammered."""
        delay = 0.2
        while not self._stopping:
            try:
                await once()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except errors as exc:
                log.warning("%s: %s; retrying in %.1fs", label, describe(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    @staticmethod
    async def _room(slots: asyncio.Semaphore) -> int:
        """Wait until ``slots`` has room, then how much: what a consumer may ask for now."""
        await slots.acquire()
        slots.release()
        return max(1, slots._value)

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ensure_queues(self, queues: dict[str, tuple[str, ...]]) -> None:
        """Declare durable queues and their bindings, so nothing published is unroutable."""

    @abc.abstractmethod
    async def publish(self, message: Message, *, timeout_s: float) -> None:
        """Return once the broker has confirmed the message; else raise BrokerUnavailable."""

    @abc.abstractmethod
    async def consume(
        self, queue: str, routing_keys: tuple[str, ...], prefetch: int, handler: Handler
    ) -> None:
        """Start delivering ``queue``'s messages to ``handler``, at most ``prefetch`` at once."""

    @abc.abstractmethod
    async def queue_depth(self, queue: str) -> int | None:
        """Messages ready in ``queue``, or None when the broker can not say right now."""

    async def dead_letters(self, queue: str) -> int:
        """Messages dead-lettered from ``queue`` so far (0 where the broker keeps none)."""
        return 0
