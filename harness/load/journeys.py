"""A shopper's journey: its checkout (retried if impatient), then, for a lane that answers
with where to follow the order, following it with back-off until it is done.

Every request is recorded (:class:`harness.load.request_log.RequestLog`) and reported to
whoever counts requests (Locust's stats) with the same times; each arrival's send lag and
each dropped arrival is counted for the generator's health
(:class:`harness.load.generator_health.GeneratorHealth`).  The HTTP client, the sleep,
the spawn of a journey and the errors that mean "no answer" are passed in: Locust's gevent
ones in the locustfile, fakes in the tests, so nothing here imports Locust or gevent.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.load.generator_health import GeneratorHealth
from harness.load.request_log import RequestLog
from harness.load.settings import LaneRequest
from model.headers import DEADLINE_HEADER
from model.scenario import LoadSpec
from model.system import FollowSpec, LaneSpec, as_format

__all__ = ["CUSTOMERS", "SKUS", "HttpClient", "HttpResponse", "Journeys", "RequestListener", "request_id"]

SKUS = ("tv-55", "console", "headphones", "laptop", "blender", "sneakers", "drone", "camera")
# Returning shoppers: a customer may order again while their first order is still queued, so
# whether a broker keeps one customer's orders in order is measurable (worker out-of-order).
CUSTOMERS = 2000


class HttpResponse(Protocol):
    """What a journey reads of an answer (:class:`harness.load.http_client.Answer`)."""

    @property
    def status_code(self) -> int: ...

    @property
    def arrived(self) -> float | None:
        """When the answer arrived (epoch seconds), if the client knows better than the clock."""
        ...

    def read(self) -> bytes: ...

    def get(self, key: str, default: str | None = None) -> Any: ...


class HttpClient(Protocol):
    """One lane's connections to its target (:class:`harness.load.http_client.KeepAliveClient`)."""

    def request(
        self, method: str, request_uri: str, body: bytes | None = ..., headers: Mapping[str, str] = ...
    ) -> HttpResponse: ...

    def get(self, request_uri: str) -> HttpResponse: ...


class RequestListener(Protocol):
    """Told of every recorded request, with the record's times (Locust's ``request`` event)."""

    def __call__(
        self, name: str, started: float, ended: float, code: int, length: int = 0, error: str | None = None
    ) -> None: ...


# A journey run on its own (a greenlet in the locustfile): the function and its arguments.
JourneyRun = Callable[["HttpClient", str, float], None]


@dataclass(frozen=True, kw_only=True)
class Journeys:
    """The journeys of one generator process, with what they need passed in."""

    load: LoadSpec
    requests: Mapping[str, LaneRequest]
    log: RequestLog
    health: GeneratorHealth
    listener: RequestListener
    sleep: Callable[[float], None]
    spawn: Callable[[JourneyRun, HttpClient, str, float], object]
    # What a client raises for a request that got no answer (a timeout, a refused connection).
    no_answer: tuple[type[BaseException], ...] = (OSError,)
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    # Each body template as a str.format string, parsed at its first request, not at every one.
    _formats: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _report(
        self, name: str, intended: float, ended: float, code: int, length: int = 0, error: str | None = None
    ) -> None:
        """Report one recorded request to the listener, and to the exact histogram with the same times."""
        self.log.observe(name, ended - intended)
        self.listener(name, intended, ended, code, length, error)

    def arrive(self, client: HttpClient, lane: str, intended: float) -> None:
        """An open-model arrival: its journey on its own, or dropped if its lane has
        ``max_in_flight`` journeys already."""
        if self.log.in_flight[lane] >= self.load.max_in_flight:
            self.health.on_dropped()
            ended = self.log.record(intended, lane, "dropped", 0, 0, "", start=None)
            self._report(f"{lane} arrival dropped", intended, ended, 0, error="max_in_flight")
            return
        # Counted before it runs, so no report to the master sees it neither generated
        # nor in flight (the master would stop the test on it).
        self.log.in_flight[lane] += 1
        self.spawn(self.counted_journey, client, lane, intended)

    def journey(self, client: HttpClient, lane: str, intended: float) -> None:
        """One shopper's checkout (retried if impatient), then, for async, until fulfilled."""
        self.log.in_flight[lane] += 1
        self.counted_journey(client, lane, intended)

    def counted_journey(self, client: HttpClient, lane: str, intended: float) -> None:
        """A journey its caller already counted in flight."""
        try:
            for attempt in range(self.load.impatient.retries + 1):
                name = f"{lane} checkout" if attempt == 0 else f"{lane} checkout retry"
                sent = self.clock()
                if attempt == 0:
                    self.health.on_sent(lane, sent - intended)
                code, location, order_id, error, length, arrived = self._send(client, lane, intended)
                ended = self.log.record(
                    intended, lane, "checkout", code, attempt, order_id, start=sent, end=arrived
                )
                self._report(name, intended, ended, code, length, error)
                spec = self.requests[lane].spec
                if 200 <= code <= 299:
                    if spec.follow is not None and location:
                        self._follow(client, lane, intended, location, order_id, spec.follow)
                    return
                if code != 0:  # an answer, even an error, is not what makes a shopper retry
                    return
        finally:
            self.log.in_flight[lane] -= 1

    def body(self, spec: LaneSpec) -> bytes | None:
        """The lane's body template, with this request's draw of shopper, item and quantity."""
        if spec.body is None:
            return None
        template = self._formats.get(spec.body)
        if template is None:
            template = self._formats[spec.body] = as_format(spec.body)
        return template.format(
            request_id=request_id(),
            customer=f"shopper-{self.rng.randrange(CUSTOMERS)}",
            sku=self.rng.choice(SKUS),
            qty=self.rng.randint(1, 3),
        ).encode()

    def _send(
        self, client: HttpClient, lane: str, intended: float
    ) -> tuple[int, str, str, str | None, int, float | None]:
        """The lane's request: (status, where to follow it, its id, error, answer length, when
        the answer arrived: None for no answer)."""
        request = self.requests[lane]
        spec = request.spec
        # The intended start travels with the request, so a server can measure the latency a
        # shopper really saw, coordinated omission included; and so does how long the shopper
        # waits for this answer, for a lane that propagates deadlines (sync.retry.policy: deadline).
        headers = {
            **spec.headers,
            "X-Intended-Start": f"{intended:.6f}",
            DEADLINE_HEADER: str(math.floor(self.load.impatient.timeout * 1000)),
        }
        body = self.body(spec)
        try:
            response = client.request(spec.method, request.path, body=body, headers=headers)
            data = response.read()
        except self.no_answer as exc:
            return 0, "", "", f"no answer: {type(exc).__name__}", 0, None
        code, arrived = response.status_code, response.arrived
        answer_id = _answer_id(spec, data)
        if not 200 <= code <= 299:
            # A failed order may still have an id (a sync 502): its side effects are counted.
            return code, "", answer_id or "", f"HTTP {code}", len(data), arrived
        if spec.id_field is not None and answer_id is None:
            return code, "", "", f"answer without {spec.id_field}", len(data), arrived
        return code, _location(spec, response, data), answer_id or request_id(), None, len(data), arrived

    def _follow(
        self, client: HttpClient, lane: str, intended: float, location: str, order_id: str, rule: FollowSpec
    ) -> None:
        poll = self.load.poll
        delay = poll.initial
        following = self.clock()
        deadline = following + poll.give_up
        while self.clock() < deadline:
            self.sleep(delay)
            delay = min(delay * 2, poll.max)
            try:
                response = client.get(location)
                status = json.loads(response.read()).get(rule.status_field)
            except (ValueError, AttributeError):
                continue
            except self.no_answer:
                continue
            if status in rule.done:
                ended = self.log.record(intended, lane, "fulfillment", 200, 0, order_id, start=following)
                self._report(f"{lane} fulfillment", intended, ended, 200)
                return
            if status in rule.failed:
                ended = self.log.record(intended, lane, "fulfillment", 500, 0, order_id, start=following)
                self._report(f"{lane} fulfillment", intended, ended, 500, error="order failed")
                return
        ended = self.log.record(intended, lane, "fulfillment", 0, 0, order_id, start=following)
        self._report(f"{lane} fulfillment", intended, ended, 0, error="gave up waiting")


def request_id() -> str:
    """A new random version-4 UUID as ``uuid.uuid4().hex`` gives it, without the UUID object
    (one per request).

    >>> import uuid
    >>> rid = request_id()
    >>> uuid.UUID(hex=rid).version, uuid.UUID(hex=rid).hex == rid
    (4, True)
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # the version: 4, random
    raw[8] = raw[8] & 0x3F | 0x80  # the variant: RFC 4122
    return raw.hex()


def _answer_id(spec: LaneSpec, data: bytes) -> str | None:
    if spec.id_field is None:
        return None
    try:
        value = json.loads(data)[spec.id_field]
    except (ValueError, KeyError, TypeError):
        return None
    return str(value)


def _location(spec: LaneSpec, response: HttpResponse, data: bytes) -> str:
    """Where to follow an accepted request: a header or a JSON field of the answer."""
    if spec.follow is None:
        return ""
    source, _, name = spec.follow.location.partition(":")
    if source == "header":
        return str(response.get(name.lower()) or "")
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(json.loads(data)[name])
    return ""
