"""Kafka as the async lane's broker: ordered, replayable partitions read by consumer groups.

A routing key is a topic (``doorbuster.<key>``); a queue is a consumer group subscribed to its
keys' topics, so every group reads every record (fan-out) and the members of one group share
the partitions (a work queue).  Records are keyed by :attr:`Message.ordering_key`: one key, one
partition, one order.  The producer is idempotent and waits for ``acks=all``, so a retried
send is not written twice and a confirmed record is in the log.

**Acknowledgements.**  Kafka keeps one committed offset per partition and group, not an
acknowledgement per record.  The consumer here hands records out concurrently (at most
``prefetch`` at once) but never two records of one key at the same time, and it commits, per
partition, the offset below which every record is settled.  A worker killed with records in
flight has not committed them: the partition's next owner reads them again once the group
notices the death (the session timeout).  Each commit also carries, as its metadata, how far
its consumer had handed records out, so the next owner can mark those records redelivered.

**Dead letters** go to the topic ``doorbuster.dead.<queue>``.  Kafka has no per-record
requeue: a requeued record stays uncommitted and is handed to the handler again after a pause.

A rebalance that moves a partition while its records are in flight hands them to the new
owner too; the workers' idempotency absorbs the duplicate, and doorbuster counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from targets.brokers.interface import Broker, BrokerUnavailable, Delivery, Handler, Message

__all__ = ["KafkaBroker", "dead_topic", "topic"]

log = logging.getLogger(__name__)
_ERRORS = (KafkaError, OSError, asyncio.TimeoutError)
_COMMIT_EVERY_S = 0.2
_REQUEUE_PAUSE_S = 1.0


def topic(routing_key: str) -> str:
    return f"doorbuster.{routing_key}"


def dead_topic(queue: str) -> str:
    return f"doorbuster.dead.{queue}"


def _encode(message: Message) -> list[tuple[str, bytes]]:
    headers = {**message.headers, "message_id": message.message_id, "routing_key": message.routing_key}
    return [(k, v.encode()) for k, v in headers.items()]


def _decode(record: Any) -> Message:
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    return Message(
        message_id=headers.pop("message_id", f"{record.topic}/{record.partition}/{record.offset}"),
        routing_key=headers.pop("routing_key", record.topic.removeprefix("doorbuster.")),
        body=record.value or b"",
        headers=headers,
    )


@dataclass
class _Partition:
    """What one consumer knows of one assigned partition."""

    next_offset: int  # the offset after the last record handed out
    redelivered_below: int  # records below this were handed out by an earlier owner
    in_flight: set[int] = field(default_factory=set)
    committed: tuple[int, int] = (-1, -1)

    def position(self) -> tuple[int, int]:
        """(offset to commit: everything below it is settled, how far records went out)."""
        settled = min(self.in_flight) if self.in_flight else self.next_offset
        return settled, self.next_offset


class _Group(ConsumerRebalanceListener):  # type: ignore[misc]
    """One consumer group member: its consumer, its partitions, its commits."""

    def __init__(self, broker: KafkaBroker, queue: str, consumer: AIOKafkaConsumer) -> None:
        self.broker = broker
        self.queue = queue
        self.consumer = consumer
        self.partitions: dict[TopicPartition, _Partition] = {}
        self.chains: dict[str, asyncio.Task[None]] = {}  # ordering key -> its latest record's task

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        with contextlib.suppress(*_ERRORS):
            await self.commit()
        for tp in revoked:
            self.partitions.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        committed: dict[TopicPartition, Any] = {}
        try:
            committed = await self.broker.admin.list_consumer_group_offsets(self.queue, partitions=assigned)
        except _ERRORS as exc:
            log.warning("%s: could not read committed offsets: %r", self.queue, exc)
        for tp in assigned:
            offset, metadata = -1, ""
            if tp in committed:
                offset, metadata = committed[tp].offset, committed[tp].metadata or ""
            start = max(offset, 0)
            mark = int(metadata) if metadata.isdigit() else start
            self.partitions[tp] = _Partition(next_offset=start, redelivered_below=max(mark, start))

    async def commit(self) -> None:
        offsets: dict[TopicPartition, tuple[int, str]] = {}
        for tp, part in self.partitions.items():
            settled, handed_out = part.position()
            if (settled, handed_out) != part.committed:
                offsets[tp] = (settled, str(handed_out))
        if not offsets:
            return
        await self.consumer.commit(offsets)
        for tp, (offset, mark) in offsets.items():
            if tp in self.partitions:
                self.partitions[tp].committed = (offset, int(mark))


class KafkaBroker(Broker):
    name = "kafka"

    def __init__(
        self,
        url: str,
        *,
        partitions: int = 6,
        session_timeout_s: float = 10.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        self.bootstrap = url.removeprefix("kafka://").rstrip("/")
        self.partitions = partitions
        self.session_timeout_ms = int(session_timeout_s * 1000)
        self.request_timeout_ms = int(request_timeout_s * 1000)
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None  # group-less: reads offsets for depths
        self._groups: list[_Group] = []
        self.bindings: dict[str, tuple[str, ...]] = {}
        self._topic_partitions: dict[str, list[int]] = {}

    @property
    def admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            raise BrokerUnavailable("not connected")
        return self._admin

    async def connect(self) -> None:
        common = {"bootstrap_servers": self.bootstrap, "request_timeout_ms": self.request_timeout_ms}
        self._producer = AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=0, **common)
        self._admin = AIOKafkaAdminClient(**common)
        self._probe = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **common)
        try:
            for client in (self._producer, self._admin, self._probe):
                await asyncio.wait_for(client.start(), timeout=self.request_timeout_ms / 1000)
        except _ERRORS as exc:
            await self.close()
            raise BrokerUnavailable(f"can not connect to Kafka at {self.bootstrap}: {exc!r}") from exc
        self._stopping = False

    async def close(self) -> None:
        await self._stop_tasks()
        for group in self._groups:
            with contextlib.suppress(*_ERRORS):
                await asyncio.wait_for(group.commit(), timeout=3)
            with contextlib.suppress(*_ERRORS):
                await asyncio.wait_for(group.consumer.stop(), timeout=5)
        self._groups.clear()
        for client in (self._producer, self._probe):
            if client is not None:
                with contextlib.suppress(*_ERRORS):
                    await asyncio.wait_for(client.stop(), timeout=5)
        if self._admin is not None:
            with contextlib.suppress(*_ERRORS):
                await asyncio.wait_for(self._admin.close(), timeout=5)
        self._producer = self._admin = self._probe = None

    async def _create_topics(self, names: list[str]) -> None:
        try:
            response = await self.admin.create_topics(
                [NewTopic(name, self.partitions, 1) for name in names], timeout_ms=self.request_timeout_ms
            )
        except TopicAlreadyExistsError:
            return
        for name, code, *_ in getattr(response, "topic_errors", ()):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise BrokerUnavailable(f"can not create topic {name}: error {code}")

    async def ensure_queues(self, queues: dict[str, tuple[str, ...]]) -> None:
        names = []
        for queue, keys in queues.items():
            self.bindings[queue] = keys
            names += [topic(k) for k in keys] + [dead_topic(queue)]
        try:
            # A new group starts at the earliest offset: what was published before it is read.
            await self._create_topics(sorted(set(names)))
        except _ERRORS as exc:
            raise BrokerUnavailable(f"can not create topics: {exc!r}") from exc

    async def publish(self, message: Message, *, timeout_s: float) -> None:
        await self._send(topic(message.routing_key), message, timeout_s)

    async def _send(self, name: str, message: Message, timeout_s: float) -> None:
        if self._producer is None:
            raise BrokerUnavailable("not connected")
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(
                    name, message.body, key=message.ordering_key.encode(), headers=_encode(message)
                ),
                timeout=timeout_s,
            )
        except _ERRORS as exc:
            raise BrokerUnavailable(f"publish of {message.message_id} not acknowledged: {exc!r}") from exc

    async def consume(
        self, queue: str, routing_keys: tuple[str, ...], prefetch: int, handler: Handler
    ) -> None:
        await self.ensure_queues({queue: routing_keys})
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            request_timeout_ms=self.request_timeout_ms,
            group_id=queue,
            client_id=queue,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.session_timeout_ms // 3),
            max_poll_interval_ms=300_000,
        )
        group = _Group(self, queue, consumer)
        consumer.subscribe([topic(k) for k in routing_keys], listener=group)
        try:
            await asyncio.wait_for(consumer.start(), timeout=self.request_timeout_ms / 1000)
        except _ERRORS as exc:
            with contextlib.suppress(*_ERRORS):
                await consumer.stop()
            raise BrokerUnavailable(f"can not join group {queue}: {exc!r}") from exc
        self._groups.append(group)
        self._spawn(self._fetch(group, prefetch, handler))
        self._spawn(self._commit_loop(group))

    async def _commit_loop(self, group: _Group) -> None:
        while not self._stopping:
            await asyncio.sleep(_COMMIT_EVERY_S)
            try:
                await group.commit()
            except _ERRORS as exc:  # a rebalance is under way: the next round commits
                log.info("%s: commit deferred: %r", group.queue, exc)

    async def _fetch(self, group: _Group, prefetch: int, handler: Handler) -> None:
        slots = asyncio.Semaphore(prefetch)

        async def once() -> None:
            room = await self._room(slots)
            batches = await group.consumer.getmany(timeout_ms=1000, max_records=room)
            handed: list[tuple[TopicPartition, _Partition, Any]] = []
            for tp, records in batches.items():
                if not records:
                    continue
                part = group.partitions.get(tp)
                if part is None:  # fetched before the assignment was recorded
                    first = records[0].offset
                    part = group.partitions[tp] = _Partition(next_offset=first, redelivered_below=first)
                for record in records:
                    part.in_flight.add(record.offset)
                    handed.append((tp, part, record))
                part.next_offset = records[-1].offset + 1
            # Record how far records went out before any handler sees them: if this
            # worker dies now, the next owner knows these are redeliveries.
            with contextlib.suppress(*_ERRORS):
                await group.commit()
            for _tp, part, record in handed:
                await slots.acquire()
                self._hand_out(group, part, record, handler, slots)

        await self._poll(f"kafka consumer {group.queue}", _ERRORS, once)

    def _hand_out(
        self, group: _Group, part: _Partition, record: Any, handler: Handler, slots: asyncio.Semaphore
    ) -> None:
        key = (record.key or b"").decode(errors="replace")
        previous = group.chains.get(key)
        redelivered = record.offset < part.redelivered_below
        task = self._spawn(self._in_turn(previous, group, part, record, handler, slots, redelivered))
        group.chains[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if group.chains.get(key) is done:
                del group.chains[key]

        task.add_done_callback(forget)

    async def _in_turn(
        self,
        previous: asyncio.Task[None] | None,
        group: _Group,
        part: _Partition,
        record: Any,
        handler: Handler,
        slots: asyncio.Semaphore,
        redelivered: bool,
    ) -> None:
        if previous is not None:  # one key, one record at a time, in partition order
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(previous)
        again = asyncio.Event()
        while True:
            again.clear()
            delivery = self._delivery(group, part, record, slots, redelivered, again)
            try:
                await handler(delivery)
            except Exception:  # a handler that fails without settling: hand it out again
                log.exception("handler failed on %s", delivery.message.message_id)
                await delivery.requeue()
            if not again.is_set():
                return
            await asyncio.sleep(_REQUEUE_PAUSE_S)
            redelivered = True

    def _delivery(
        self,
        group: _Group,
        part: _Partition,
        record: Any,
        slots: asyncio.Semaphore,
        redelivered: bool,
        again: asyncio.Event,
    ) -> Delivery:
        settled = False
        message = _decode(record)

        async def settle() -> None:
            nonlocal settled
            settled = True
            part.in_flight.discard(record.offset)  # the commit loop moves the offset past it
            slots.release()

        async def ack() -> None:
            if not settled:
                await settle()

        async def dead_letter() -> None:
            if settled:
                return
            try:
                await self._send(dead_topic(group.queue), message, 5.0)
            except BrokerUnavailable as exc:
                log.warning("could not dead-letter %s: %s; handing it out again", message.message_id, exc)
                await requeue()
                return
            await settle()

        async def requeue() -> None:
            nonlocal settled
            if not settled:
                settled = True  # this delivery is over; the record is handed out again
                again.set()

        return Delivery(message=message, redelivered=redelivered, ack=ack, dead_letter=dead_letter,
                        requeue=requeue)  # fmt: skip

    async def _partition_ids(self, name: str) -> list[int]:
        if name not in self._topic_partitions:
            if self._probe is None:
                raise BrokerUnavailable("not connected")
            ids = self._probe.partitions_for_topic(name)
            if not ids:
                described = await self.admin.describe_topics([name])
                ids = {p["partition"] for d in described for p in d.get("partitions", ())}
            if not ids:
                return []
            self._topic_partitions[name] = sorted(ids)
        return self._topic_partitions[name]

    async def _sizes(self, names: list[str], group: str | None) -> int:
        """Records in ``names`` not yet committed by ``group`` (every record when None)."""
        if self._probe is None:
            raise BrokerUnavailable("not connected")
        tps = [TopicPartition(n, p) for n in names for p in await self._partition_ids(n)]
        if not tps:
            return 0
        ends = await self._probe.end_offsets(tps)
        starts = await self._probe.beginning_offsets(tps)
        committed: dict[TopicPartition, Any] = {}
        if group is not None:
            committed = await self.admin.list_consumer_group_offsets(group, partitions=tps)
        total = 0
        for tp in tps:
            done = committed[tp].offset if tp in committed else -1
            total += max(0, ends[tp] - max(done, starts[tp]))
        return total

    async def queue_depth(self, queue: str) -> int | None:
        try:
            return await self._sizes([topic(k) for k in self.bindings.get(queue, ())], queue)
        except (*_ERRORS, BrokerUnavailable):
            return None

    async def dead_letters(self, queue: str) -> int:
        try:
            return await self._sizes([dead_topic(queue)], None)
        except _ERRORS as exc:
            raise BrokerUnavailable(repr(exc)) from exc
