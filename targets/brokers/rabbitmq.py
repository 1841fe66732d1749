"""RabbitMQ as the async lane's broker, through aio-pika.

A message is published only when the broker confirms it (publisher confirms), and removed
from a queue only when its consumer acknowledges it, so a broker or worker that dies loses
nothing.  A message a worker gives up on goes to ``orders.dead-letter``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from targets.brokers.interface import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    Broker,
    BrokerUnavailable,
    Delivery,
    Handler,
    Message,
)

__all__ = ["RabbitMQBroker"]

log = logging.getLogger(__name__)


class RabbitMQBroker(Broker):
    """RabbitMQ through aio-pika: a robust connection that reconnects by itself."""

    name = "rabbitmq"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._inspect_channel: aio_pika.abc.AbstractRobustChannel | None = None

    async def connect(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(self.url, timeout=5)
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await self._declare(channel)
            self._publish_channel = channel
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
            raise BrokerUnavailable(f"can not connect to RabbitMQ at {self.url}: {exc}") from exc

    @staticmethod
    async def _declare(channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractExchange:
        await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        return await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._inspect_channel = None

    async def publish(self, message: Message, *, timeout_s: float) -> None:
        if self._exchange is None:
            raise BrokerUnavailable("not connected")
        amqp_message = aio_pika.Message(
            message.body,
            message_id=message.message_id,
            headers=dict(message.headers),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=message.headers.get("correlation_id"),
        )
        try:
            await asyncio.wait_for(
                # mandatory: a message no queue would take comes back as an error instead of
                # being confirmed and silently dropped.
                self._exchange.publish(amqp_message, routing_key=message.routing_key, mandatory=True),
                timeout=timeout_s,
            )
        except (
            TimeoutError,
            OSError,
            RuntimeError,
            aio_pika.exceptions.AMQPError,
            aio_pika.exceptions.DeliveryError,
        ) as exc:
            raise BrokerUnavailable(f"publish of {message.message_id} not confirmed: {exc!r}") from exc

    @staticmethod
    async def _declare_queue(
        channel: aio_pika.abc.AbstractChannel,
        exchange: aio_pika.abc.AbstractExchange,
        queue: str,
        routing_keys: tuple[str, ...],
    ) -> aio_pika.abc.AbstractQueue:
        dead_letters = await channel.declare_queue(f"{queue}.dead", durable=True)
        await dead_letters.bind(DEAD_LETTER_EXCHANGE, routing_key=queue)
        amqp_queue = await channel.declare_queue(
            queue,
            durable=True,
            arguments={
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": queue,
            },
        )
        for key in routing_keys:
            await amqp_queue.bind(exchange, routing_key=key)
        return amqp_queue

    async def ensure_queues(self, queues: dict[str, tuple[str, ...]]) -> None:
        if self._publish_channel is None or self._exchange is None:
            raise BrokerUnavailable("not connected")
        try:
            for queue, keys in queues.items():
                await self._declare_queue(self._publish_channel, self._exchange, queue, keys)
        except (TimeoutError, OSError, RuntimeError, aio_pika.exceptions.AMQPError) as exc:
            raise BrokerUnavailable(f"can not declare queues: {exc!r}") from exc

    async def consume(
        self, queue: str, routing_keys: tuple[str, ...], prefetch: int, handler: Handler
    ) -> None:
        if self._connection is None:
            raise BrokerUnavailable("not connected")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        exchange = await self._declare(channel)
        amqp_queue = await self._declare_queue(channel, exchange, queue, routing_keys)

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            delivery = Delivery(
                message=Message(
                    message_id=incoming.message_id or "",
                    routing_key=incoming.routing_key or "",
                    body=incoming.body,
                    headers={k: str(v) for k, v in (incoming.headers or {}).items()},
                ),
                redelivered=bool(incoming.redelivered),
                ack=lambda: _settle(incoming.ack()),
                dead_letter=lambda: _settle(incoming.reject(requeue=False)),
                requeue=lambda: _settle(incoming.nack(requeue=True)),
            )
            self._spawn(handler(delivery))

        await amqp_queue.consume(on_message)

    async def dead_letters(self, queue: str) -> int:
        depth = await self.queue_depth(f"{queue}.dead")
        if depth is None:
            raise BrokerUnavailable(f"can not read {queue}.dead")
        return depth

    async def queue_depth(self, queue: str) -> int | None:
        if self._connection is None:
            return None
        try:
            # One channel for these checks, opened again only once the broker closed it (a
            # passive declare of a missing queue does): aio-pika keeps a callback on the
            # connection for every channel ever opened, so a channel a second grew the worker
            # by about 1 MiB every 10 minutes (bench/soak.py).
            if self._inspect_channel is None or self._inspect_channel.is_closed:
                self._inspect_channel = await asyncio.wait_for(self._connection.channel(), timeout=2)
            # robust=False: a robust channel answers a repeated passive declare from its cache
            # (a stale count) and re-declares remembered queues on every reconnect.
            declared = await asyncio.wait_for(
                self._inspect_channel.declare_queue(queue, passive=True, robust=False), timeout=2
            )
            count = declared.declaration_result.message_count
            return int(count) if count is not None else None
        except (TimeoutError, OSError, RuntimeError, aio_pika.exceptions.AMQPError):
            return None


async def _settle(result: Any) -> None:
    # aio-pika settles on the channel the message came from; if that channel died, the
    # broker has already requeued the message and settling it here is impossible and moot.
    try:
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            await result
    except (
        RuntimeError,
        aio_pika.exceptions.AMQPError,
        aio_pika.exceptions.ChannelInvalidStateError,
    ) as exc:
        log.warning("could not settle message: %r", exc)
