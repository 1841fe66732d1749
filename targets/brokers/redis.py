"""Redis as the async lane's broker: Streams (at-least-once) and Pub/Sub (at-most-once).

**Streams.** A routing key is a stream (``doorbuster:<key>``); a queue is a consumer group on
each stream it is bound to, so every group gets every message (fan-out) and the consumers of
one group share them (a work queue). ``XADD`` returns once Redis has the entry (with the AOF,
fsynced every second); an entry is removed from its group's pending list only by ``XACK``. A
worker that dies leaves its entries pending; another consumer claims them (``XAUTOCLAIM``) once
idle for ``claim_idle_s`` and they are delivered as redeliveries.  An entry a live consumer
requeued, or failed to acknowledge (a connection cut mid-fault), is still in that consumer's
own pending list: it reads that list again (``XREADGROUP`` from id 0) on its next poll, and
every few seconds anyway, so the entry comes back at once instead of after ``claim_idle_s``,
and so does an entry whose delivery a cut connection lost.  Dead letters go to ``doorbuster:dead:<queue>``.

**Pub/Sub.** A queue bound to a routing key is a channel (``doorbuster:<key>:<queue>``), and
a message is published once to each: nothing is stored, so a message published while its
subscriber is away is gone.  Every loss is counted (``lost_messages``), never hidden, in two
places that never count the same message twice:

* the publisher: ``PUBLISH`` says how many subscribers received a message; none means lost;
* the subscriber: ``PUBLISH`` counts a message Redis wrote to a subscriber's connection, and a
  connection cut at that moment (a Toxiproxy fault, a network blip) loses it all the same.  So
  each message carries its publisher, a sequence number per channel, and how many of that
  channel's earlier messages the publisher already counted as lost; a subscriber that sees a
  gap in the sequence counts the messages missing from it that the publisher did not count.

A message its consumer hands back (``requeue``: a worker that could not report its step while
the broker hop was cut) can not be delivered again, so the subscriber counts it lost too.
A subscriber counts gaps only between two messages it received, so what a subscriber process
had in hand when it was killed is not counted (the order ledger still finds those orders).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from targets.brokers.interface import Broker, BrokerUnavailable, Delivery, Handler, Message, describe

__all__ = ["RedisPubSubBroker", "RedisStreamsBroker"]

log = logging.getLogger(__name__)
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def _stream(key: str) -> str:
    return f"doorbuster:{key}"


def _dead(queue: str) -> str:
    return f"doorbuster:dead:{queue}"


def _fields(message: Message) -> Any:
    return {"id": message.message_id, "key": message.routing_key, "body": message.body,
            "headers": json.dumps(message.headers)}  # fmt: skip


def _message(fields: dict[bytes, bytes]) -> Message:
    return Message(
        message_id=fields.get(b"id", b"").decode(),
        routing_key=fields.get(b"key", b"").decode(),
        body=fields.get(b"body", b""),
        headers=json.loads(fields.get(b"headers", b"{}") or b"{}"),
    )


class _RedisBase(Broker):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._redis: aioredis.Redis | None = None
        self.bindings: dict[str, tuple[str, ...]] = {}  # queue -> routing keys

    async def connect(self) -> None:
        client = aioredis.from_url(
            self.url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=5
        )
        try:
            await client.ping()
        except _ERRORS as exc:
            await client.aclose()
            raise BrokerUnavailable(f"can not connect to Redis at {self.url}: {describe(exc)}") from exc
        self._redis = client

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise BrokerUnavailable("not connected")
        return self._redis

    async def close(self) -> None:
        # redis-py does not always let a blocked read be cancelled, so the loops stop on a flag
        # (they wake at least once a second); cancelling is the bounded fallback.
        await self._stop_tasks(grace_s=3)
        if self._redis is not None:
            with contextlib.suppress(*_ERRORS):
                await asyncio.wait_for(self._redis.aclose(), timeout=3)
            self._redis = None


class RedisStreamsBroker(_RedisBase):
    name = "redis-streams"

    def __init__(self, url: str, *, claim_idle_s: float = 30.0, max_len: int = 1_000_000) -> None:
        super().__init__(url)
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.max_len = max_len

    async def ensure_queues(self, queues: dict[str, tuple[str, ...]]) -> None:
        try:
            for queue, keys in queues.items():
                self.bindings[queue] = keys
                for key in keys:
                    try:
                        # From id 0: what was published before the group existed is delivered too.
                        await self.redis.xgroup_create(_stream(key), queue, id="0", mkstream=True)
                    except ResponseError as exc:
                        if "BUSYGROUP" not in str(exc):
                            raise
        except _ERRORS as exc:
            raise BrokerUnavailable(f"can not declare consumer groups: {describe(exc)}") from exc

    async def publish(self, message: Message, *, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(
                self.redis.xadd(
                    _stream(message.routing_key), _fields(message), maxlen=self.max_len, approximate=True
                ),
                timeout=timeout_s,
            )
        except _ERRORS as exc:
            raise BrokerUnavailable(f"publish of {message.message_id} not stored: {describe(exc)}") from exc

    async def consume(
        self, queue: str, routing_keys: tuple[str, ...], prefetch: int, handler: Handler
    ) -> None:
        await self.ensure_queues({queue: routing_keys})
        self._spawn(self._consume(queue, routing_keys, prefetch, handler))

    def _delivery(
        self,
        queue: str,
        stream: str,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        redelivered: bool,
        done: asyncio.Semaphore,
        left_pending: Callable[[], None],
        acked: set[bytes],
    ) -> Delivery:
        settled = False

        async def settle(dead: bool) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            try:
                if dead:
                    await self.redis.xadd(_dead(queue), fields)  # type: ignore[arg-type]
                await self.redis.xack(stream, queue, entry_id)
                acked.add(entry_id)
            except _ERRORS as exc:  # still pending with us: read again on the next poll
                log.warning("could not settle %s: %s", entry_id, describe(exc))
                left_pending()
            finally:
                done.release()  # only now: until the ack lands, the entry is still ours

        async def requeue() -> None:
            nonlocal settled
            if not settled:
                settled = True
                left_pending()
                done.release()

        return Delivery(
            message=_message(fields),
            redelivered=redelivered,
            ack=lambda: settle(False),
            dead_letter=lambda: settle(True),
            requeue=requeue,
        )

    async def _consume(self, queue: str, keys: tuple[str, ...], prefetch: int, handler: Handler) -> None:
        consumer = f"{queue}-{os.getpid()}"
        slots = asyncio.Semaphore(prefetch)
        # Entries this consumer holds right now: XAUTOCLAIM hands back our own idle entries
        # too, and a message still being worked on must not be delivered a second time.
        holding: set[bytes] = set()
        # Entries acknowledged since this poll's reads were sent: a read of the pending list
        # answered before an ack landed still lists the entry, and its handler may have
        # finished (left ``holding``) by the time the answer is looked at.
        acked: set[bytes] = set()
        streams = {_stream(k): ">" for k in keys}
        last_claim = 0.0
        loop = asyncio.get_running_loop()
        # Whether our own pending list may hold an entry we are not working on: one requeued,
        # one whose ack failed, or one a broker error cut off on its way to us.
        recheck = True

        def left_pending() -> None:
            nonlocal recheck
            recheck = True

        async def once() -> None:
            nonlocal recheck
            try:
                await read()
            except _ERRORS:
                recheck = True  # an answer the error cut off may have made entries ours
                raise

        async def read() -> None:
            nonlocal last_claim, recheck
            room = await self._room(slots)
            acked.clear()  # acked before now: the reads below can not list them
            batches: list[tuple[str, list[tuple[bytes, dict[bytes, bytes]]], bool]] = []
            periodic = loop.time() - last_claim > min(5.0, self.claim_idle_ms / 1000)
            # Every few seconds as well: redis-py retries a command on a broken connection by
            # itself, so a read whose answer a cut connection lost can leave entries pending
            # with us without any error saying so (measured: they waited for the 30 s claim).
            if recheck or periodic:
                recheck = False
                for stream in streams:
                    mine = await self._own_pending(stream, queue, consumer, holding, room)
                    recheck = recheck or len(mine) == room  # more may wait: read on next time
                    batches.append((stream, mine, True))
            if periodic:
                last_claim = loop.time()
                for stream in streams:
                    claimed: Any = await self.redis.xautoclaim(
                        stream, queue, consumer, min_idle_time=self.claim_idle_ms, count=room
                    )
                    batches.append((stream, list(claimed[1]), True))
            answer: Any = await self.redis.xreadgroup(queue, consumer, streams, count=room, block=1000)  # type: ignore[arg-type]
            for stream, entries in answer or []:
                batches.append((stream.decode() if isinstance(stream, bytes) else stream, entries, False))
            for stream, entries, redelivered in batches:
                for entry_id, fields in entries:
                    if entry_id in holding or entry_id in acked:
                        continue
                    if not fields:  # trimmed away while pending
                        await self.redis.xack(stream, queue, entry_id)
                        continue
                    await slots.acquire()
                    holding.add(entry_id)
                    delivery = self._delivery(
                        queue, stream, entry_id, fields, redelivered, slots, left_pending, acked
                    )
                    self._spawn(self._run(handler, delivery, entry_id, holding))

        await self._poll(f"redis consumer {queue}", _ERRORS, once)

    async def _own_pending(
        self, stream: str, queue: str, consumer: str, holding: set[bytes], room: int
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Up to ``room`` entries pending with ``consumer`` that it is not working on, oldest
        first: ``XREADGROUP`` from an id (not ``>``) pages through its own pending list."""
        found: list[tuple[bytes, dict[bytes, bytes]]] = []
        start: bytes | str = "0"
        while len(found) < room:
            answer: Any = await self.redis.xreadgroup(queue, consumer, {stream: start}, count=100)
            entries = answer[0][1] if answer else []
            if not entries:
                return found
            found.extend((entry_id, fields) for entry_id, fields in entries if entry_id not in holding)
            start = entries[-1][0]
        return found[:room]

    @staticmethod
    async def _run(handler: Handler, delivery: Delivery, entry_id: bytes, holding: set[bytes]) -> None:
        try:
            await handler(delivery)
        finally:
            holding.discard(entry_id)

    async def queue_depth(self, queue: str) -> int | None:
        total = 0
        try:
            for key in self.bindings.get(queue, ()):
                for group in await self.redis.xinfo_groups(_stream(key)):
                    if group["name"] in (queue, queue.encode()):
                        total += int(group.get("lag") or 0)
        except _ERRORS:
            return None
        return total

    async def dead_letters(self, queue: str) -> int:
        try:
            return int(await self.redis.xlen(_dead(queue)))
        except _ERRORS as exc:
            raise BrokerUnavailable(repr(exc)) from exc


def _channel(key: str, queue: str) -> str:
    return f"doorbuster:{key}:{queue}"


_PUBLISHERS_REMEMBERED = 1000


class RedisPubSubBroker(_RedisBase):
    """At-most-once: a message nobody receives is lost, and counted."""

    name = "redis-pubsub"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.lost_messages = 0
        self._publisher = uuid.uuid4().hex[:16]
        # channel -> (messages published, of which nobody received); one publish at a time
        self._sent: dict[str, tuple[int, int]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # (publisher, channel) -> (last sequence number seen, its publisher's lost count then)
        self._seen: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()

    async def ensure_queues(self, queues: dict[str, tuple[str, ...]]) -> None:
        self.bindings.update(queues)  # nothing to create: only who should be listening

    async def publish(self, message: Message, *, timeout_s: float) -> None:
        channels = [
            _channel(message.routing_key, q)
            for q, keys in self.bindings.items()
            if message.routing_key in keys
        ]
        try:
            await asyncio.wait_for(
                asyncio.gather(*(self._publish_to(channel, message) for channel in channels)), timeout_s
            )
        except _ERRORS as exc:
            raise BrokerUnavailable(f"publish of {message.message_id} failed: {describe(exc)}") from exc

    async def _publish_to(self, channel: str, message: Message) -> None:
        async with self._locks.setdefault(channel, asyncio.Lock()):
            sent, unreceived = self._sent.get(channel, (0, 0))
            payload = json.dumps({
                "id": message.message_id, "key": message.routing_key, "body": message.body.decode(),
                "headers": message.headers, "pub": self._publisher, "seq": sent + 1, "lost": unreceived,
            })  # fmt: skip
            received = int(await self.redis.publish(channel, payload))
            # Only now is the number used: a publish that failed may be sent again under it.
            if received == 0:
                unreceived += 1
                self.lost_messages += 1
            self._sent[channel] = (sent + 1, unreceived)

    def _count_gap(self, channel: str, data: dict[str, Any]) -> None:
        """Count what is missing between this message and the last one from its publisher."""
        publisher, seq, lost = data.get("pub"), data.get("seq"), data.get("lost")
        if not isinstance(publisher, str) or not isinstance(seq, int) or not isinstance(lost, int):
            return
        key = (publisher, channel)
        last = self._seen.get(key)
        if last is not None and seq <= last[0]:
            return  # sent again after a publish that failed: not a gap
        if last is not None:
            missing = seq - last[0] - 1
            self.lost_messages += max(0, missing - (lost - last[1]))
        self._seen[key] = (seq, lost)
        self._seen.move_to_end(key)
        if len(self._seen) > _PUBLISHERS_REMEMBERED:
            self._seen.popitem(last=False)

    def _lose_once(self) -> Callable[[], Awaitable[None]]:
        """A delivery's ``requeue``: nothing is kept to hand out again, so a message its consumer
        gives back is gone, and counted once."""
        given_back = False

        async def requeue() -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self.lost_messages += 1

        return requeue

    async def consume(
        self, queue: str, routing_keys: tuple[str, ...], prefetch: int, handler: Handler
    ) -> None:
        self.bindings[queue] = routing_keys
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*(_channel(k, queue) for k in routing_keys))
        except _ERRORS as exc:
            raise BrokerUnavailable(f"can not subscribe: {describe(exc)}") from exc
        self._spawn(self._listen(pubsub, prefetch, handler))

    async def _listen(self, pubsub: Any, prefetch: int, handler: Handler) -> None:
        slots = asyncio.Semaphore(prefetch)

        async def nothing() -> None:
            return None

        async def run(delivery: Delivery) -> None:
            try:
                await handler(delivery)
            finally:
                slots.release()

        while not self._stopping:
            try:
                item = await pubsub.get_message(timeout=1.0)
            except _ERRORS as exc:
                log.warning("redis pubsub: %s; messages published meanwhile are lost", describe(exc))
                await asyncio.sleep(1)
                continue
            if item is None or item.get("type") != "message":
                continue
            data = json.loads(item["data"])
            channel = item["channel"]
            self._count_gap(channel.decode() if isinstance(channel, bytes) else str(channel), data)
            await slots.acquire()
            delivery = Delivery(
                message=Message(
                    message_id=data["id"],
                    routing_key=data["key"],
                    body=data["body"].encode(),
                    headers=data["headers"],
                ),
                redelivered=False,
                ack=nothing,  # nothing to acknowledge: Redis forgot it on delivery
                dead_letter=nothing,
                requeue=self._lose_once(),
            )
            self._spawn(run(delivery))

    async def queue_depth(self, queue: str) -> int | None:
        return 0  # nothing waits: a message is delivered at once or lost
