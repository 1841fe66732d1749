"""SQS as the async lane's broker (standard queues), through aiobotocore, against ElasticMQ.

**Why ElasticMQ.**  It is a message queue server that speaks the SQS API (the JSON protocol the
AWS SDKs use), published on Maven Central and run here as a real server with its own state:
visibility timeouts, receive counts, redrive to dead-letter queues, long polling (its messages
are kept in memory: the control plane's ElasticMQ launcher says why).  moto's server mode would also answer
the API, but it is a mocking library (an in-memory backend in a single-threaded development
web server, made to test code against, not to carry traffic), so the numbers it gave under
load would be moto's, not a queue's.

**Mapping.**  SQS has no routing: a queue name is ``doorbuster-<queue>`` (SQS allows no dots),
and publishing a routing key sends one message to every queue bound to that key, which is what
SNS would do in front of SQS.  A message is "confirmed" when ``SendMessage`` returns.  Receiving
makes it invisible for ``visibility_timeout_s``; deleting it acknowledges it; a worker that dies
leaves it to come back once the timeout passes (``ApproximateReceiveCount`` > 1 marks the
redelivery).  A handler still working when half the timeout has passed extends it, so a slow
message is not handed to a second worker.  Each queue has a redrive policy to
``doorbuster-<queue>-dead`` (after ``max_receives`` receives) and the workers dead-letter
explicitly.  A standard queue promises no order at all; doorbuster measures what it does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from targets.brokers.interface import Broker, BrokerUnavailable, Delivery, Handler, Message

__all__ = ["SQSBroker", "queue_name"]

log = logging.getLogger(__name__)
_ERRORS = (BotoCoreError, ClientError, OSError, asyncio.TimeoutError)
_MAX_BATCH = 10  # SQS hands out at most ten messages per receive


def queue_name(queue: str) -> str:
    return "doorbuster-" + queue.replace(".", "-")


def _dead(queue: str) -> str:
    return queue_name(queue) + "-dead"


def _attributes(message: Message) -> dict[str, Any]:
    def text(value: str) -> dict[str, str]:
        return {"DataType": "String", "StringValue": value}

    return {
        "message_id": text(message.message_id),
        "routing_key": text(message.routing_key),
        "headers": text(json.dumps(message.headers)),
    }


def _body(message: Message) -> str:
    try:
        return message.body.decode()  # SQS bodies are text
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(message.body).decode()


def _message(raw: dict[str, Any]) -> Message:
    attrs = {k: v.get("StringValue", "") for k, v in raw.get("MessageAttributes", {}).items()}
    body = raw.get("Body", "")
    return Message(
        message_id=attrs.get("message_id", raw.get("MessageId", "")),
        routing_key=attrs.get("routing_key", ""),
        body=base64.b64decode(body[7:]) if body.startswith("base64:") else body.encode(),
        headers=json.loads(attrs.get("headers") or "{}"),
    )


class SQSBroker(Broker):
    name = "sqs"

    def __init__(
        self, url: str, *, visibility_timeout_s: int = 30, max_receives: int = 10, poll_s: int = 1
    ) -> None:
        super().__init__()
        self.endpoint = url.rstrip("/")
        self.visibility_timeout_s = visibility_timeout_s
        self.max_receives = max_receives
        self.poll_s = poll_s
        self._context: Any = None
        self._client: Any = None
        self._urls: dict[str, str] = {}
        self.bindings: dict[str, tuple[str, ...]] = {}  # queue -> routing keys

    @property
    def client(self) -> Any:
        if self._client is None:
            raise BrokerUnavailable("not connected")
        return self._client

    async def connect(self) -> None:
        config = AioConfig(
            connect_timeout=5,
            read_timeout=self.poll_s + 10,
            retries={"max_attempts": 1},  # the lane retries with its own back-off
            max_pool_connections=64,
        )
        self._context = get_session().create_client(
            "sqs",
            region_name="elasticmq",
            endpoint_url=self.endpoint,
            aws_access_key_id="doorbuster",  # ElasticMQ checks no credentials; the SDK wants some
            aws_secret_access_key="doorbuster",
            config=config,
        )
        self._client = await self._context.__aenter__()
        try:
            await asyncio.wait_for(self._client.list_queues(), timeout=10)
        except _ERRORS as exc:
            await self.close()
            raise BrokerUnavailable(f"can not reach SQS at {self.endpoint}: {exc!r}") from exc
        self._stopping = False

    async def close(self) -> None:
        await self._stop_tasks()
        if self._context is not None:
            with contextlib.suppress(*_ERRORS):
                await asyncio.wait_for(self._context.__aexit__(None, None, None), timeout=5)
        self._context = self._client = None

    async def _create(self, name: str, attributes: dict[str, str]) -> str:
        answer = await self.client.create_queue(QueueName=name, Attributes=attributes)
        self._urls[name] = answer["QueueUrl"]
        return str(answer["QueueUrl"])

    async def ensure_queues(self, queues: dict[str, tuple[str, ...]]) -> None:
        try:
            for queue, keys in queues.items():
                self.bindings[queue] = keys
                dead = await self._create(_dead(queue), {})
                arn = (await self.client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"]))[
                    "Attributes"
                ]["QueueArn"]
                policy = {"deadLetterTargetArn": arn, "maxReceiveCount": str(self.max_receives)}
                await self._create(
                    queue_name(queue),
                    {
                        "VisibilityTimeout": str(self.visibility_timeout_s),
                        "RedrivePolicy": json.dumps(policy),
                    },
                )
        except _ERRORS as exc:
            raise BrokerUnavailable(f"can not create queues: {exc!r}") from exc

    async def _url(self, name: str) -> str:
        if name not in self._urls:
            self._urls[name] = (await self.client.get_queue_url(QueueName=name))["QueueUrl"]
        return self._urls[name]

    async def publish(self, message: Message, *, timeout_s: float) -> None:
        queues = [q for q, keys in self.bindings.items() if message.routing_key in keys]
        if not queues:
            # RabbitMQ would return it as unroutable: never confirm a message nobody will get.
            raise BrokerUnavailable(f"no queue is bound to {message.routing_key!r}")
        await self._send([queue_name(q) for q in queues], message, timeout_s)

    async def _send(self, names: list[str], message: Message, timeout_s: float) -> None:
        async def one(name: str) -> None:
            await self.client.send_message(
                QueueUrl=await self._url(name),
                MessageBody=_body(message),
                MessageAttributes=_attributes(message),
            )

        try:
            # Fan-out: one copy per bound queue.  If one send fails, the whole publish is
            # retried and the queues that had it get a duplicate, absorbed by the workers.
            await asyncio.wait_for(asyncio.gather(*(one(n) for n in names)), timeout=timeout_s)
        except _ERRORS as exc:
            raise BrokerUnavailable(f"publish of {message.message_id} not stored: {exc!r}") from exc

    async def consume(
        self, queue: str, routing_keys: tuple[str, ...], prefetch: int, handler: Handler
    ) -> None:
        await self.ensure_queues({queue: routing_keys})
        self._spawn(self._receive(queue, prefetch, handler))

    async def _receive(self, queue: str, prefetch: int, handler: Handler) -> None:
        slots = asyncio.Semaphore(prefetch)

        async def once() -> None:
            room = await self._room(slots)
            answer = await self.client.receive_message(
                QueueUrl=await self._url(queue_name(queue)),
                MaxNumberOfMessages=min(_MAX_BATCH, room),
                WaitTimeSeconds=self.poll_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
            for raw in answer.get("Messages", []):
                await slots.acquire()
                self._spawn(self._handle(queue, raw, handler, slots))

        await self._poll(f"sqs consumer {queue}", _ERRORS, once)

    async def _handle(
        self, queue: str, raw: dict[str, Any], handler: Handler, slots: asyncio.Semaphore
    ) -> None:
        url = await self._url(queue_name(queue))
        receipt = raw["ReceiptHandle"]
        settled = asyncio.Event()
        message = _message(raw)

        async def settle(dead: bool) -> None:
            if settled.is_set():
                return
            settled.set()
            try:
                if dead:
                    await self._send([_dead(queue)], message, 5.0)
                await self.client.delete_message(QueueUrl=url, ReceiptHandle=receipt)
            except (*_ERRORS, BrokerUnavailable) as exc:  # it comes back when its timeout ends
                log.warning("could not settle %s: %r", message.message_id, exc)

        async def requeue() -> None:
            if settled.is_set():
                return
            settled.set()
            with contextlib.suppress(*_ERRORS):  # visible again at once (or when its timeout ends)
                await self.client.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0
                )

        async def keep_invisible() -> None:
            while not settled.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(settled.wait(), timeout=self.visibility_timeout_s / 2)
                    return
                with contextlib.suppress(*_ERRORS):
                    await self.client.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=self.visibility_timeout_s
                    )

        keeper = asyncio.ensure_future(keep_invisible())
        delivery = Delivery(
            message=message,
            redelivered=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")) > 1,
            ack=lambda: settle(False),
            dead_letter=lambda: settle(True),
            requeue=requeue,
        )
        try:
            await handler(delivery)
        except Exception:
            log.exception("handler failed on %s", message.message_id)
            await requeue()
        finally:
            keeper.cancel()
            slots.release()

    async def _counts(self, name: str, *attributes: str) -> int:
        answer = await self.client.get_queue_attributes(
            QueueUrl=await self._url(name), AttributeNames=list(attributes)
        )
        return sum(int(answer["Attributes"].get(a, 0)) for a in attributes)

    async def queue_depth(self, queue: str) -> int | None:
        try:
            return await self._counts(queue_name(queue), "ApproximateNumberOfMessages")
        except (*_ERRORS, BrokerUnavailable):
            return None

    async def dead_letters(self, queue: str) -> int:
        try:
            return await self._counts(
                _dead(queue), "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
            )
        except _ERRORS as exc:
            raise BrokerUnavailable(repr(exc)) from exc
