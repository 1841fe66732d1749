"""A shopper's journeys with a fake HTTP client, clock and sleep: no Locust, no gevent."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.generator_health import CpuReading, GeneratorHealth
from harness.load.journeys import HttpClient, Journeys
from harness.load.request_log import RequestLog
from harness.load.settings import LaneRequest
from harness.records.schema import RequestRecord, read_requests
from model.scenario import Impatience, LoadSpec, Polling, Stage
from model.system import FollowSpec, LaneSpec


@dataclass
class FakeClock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeResponse:
    status_code: int
    data: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    arrived: float | None = None

    def read(self) -> bytes:
        return self.data

    def get(self, key: str, default: str | None = None) -> Any:
        return self.headers.get(key, default)


@dataclass
class FakeClient:
    """Answers from a script, each answer taking ``took`` seconds of the fake clock; an
    exception in the script is raised instead, as a client raises a timeout."""

    clock: FakeClock
    answers: list[FakeResponse | BaseException]
    took: float = 0.05
    sent: list[tuple[str, str, bytes | None, Mapping[str, str]]] = field(default_factory=list)

    def _next(self) -> FakeResponse:
        self.clock.now += self.took
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def request(
        self, method: str, request_uri: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> FakeResponse:
        self.sent.append((method, request_uri, body, dict(headers)))
        return self._next()

    def get(self, request_uri: str) -> FakeResponse:
        self.sent.append(("GET", request_uri, None, {}))
        return self._next()


@dataclass
class Heard:
    """The listener's calls: (name, latency seconds, code, error)."""

    calls: list[tuple[str, float, int, str | None]] = field(default_factory=list)

    def __call__(
        self, name: str, started: float, ended: float, code: int, length: int = 0, error: str | None = None
    ) -> None:
        self.calls.append((name, round(ended - started, 6), code, error))


SYNC = LaneSpec(url="http://x/orders", body='{"id": "{request_id}", "sku": "{sku}"}', id_field="order_id")
ASYNC = LaneSpec(url="http://x/orders", id_field="order_id", follow=FollowSpec())


def _journeys(
    tmp_path: Path,
    clock: FakeClock,
    *,
    retries: int = 0,
    max_in_flight: int = 10,
    spawned: list[tuple[Callable[..., None], tuple[Any, ...]]] | None = None,
) -> tuple[Journeys, RequestLog, Heard]:
    load = LoadSpec(
        stages=(Stage(name="s", duration=1.0, rate=2.0),),
        impatient=Impatience(timeout=5.0, retries=retries),
        poll=Polling(initial=0.5, max=1.0, give_up=3.0),
        max_in_flight=max_in_flight,
    )
    log = RequestLog(("sync", "async"), tmp_path / "requests.jsonl", is_worker=False, clock=clock)
    log.open()
    heard = Heard()
    spawned = [] if spawned is None else spawned

    def spawn(run: Callable[[HttpClient, str, float], None], *args: Any) -> None:
        spawned.append((run, args))

    journeys = Journeys(
        load=load,
        requests={
            "sync": LaneRequest(spec=SYNC, path="/orders"),
            "async": LaneRequest(spec=ASYNC, path="/orders?x=1"),
        },
        log=log, health=GeneratorHealth("0", reading=CpuReading(cpu_s=0.0, wall_s=0.0), now=clock.now),
        listener=heard, sleep=clock.sleep, spawn=spawn, clock=clock,
    )  # fmt: skip
    return journeys, log, heard


def _records(log: RequestLog, tmp_path: Path) -> list[RequestRecord]:
    log.close()
    return read_requests(tmp_path / "requests.jsonl")


def test_a_checkout_is_recorded_and_heard_with_the_same_times(tmp_path: Path) -> None:
    clock = FakeClock()
    journeys, log, heard = _journeys(tmp_path, clock)
    client = FakeClient(clock, [FakeResponse(200, b'{"order_id": "o-1"}')])
    clock.now = 100.5  # half a second late: the latency counts from the intended start
    journeys.journey(client, "sync", 100.0)
    [rec] = _records(log, tmp_path)
    assert (rec.kind, rec.status, rec.order_id, rec.intended_start, rec.start) == (
        "checkout",
        200,
        "o-1",
        100.0,
        100.5,
    )
    assert heard.calls == [("sync checkout", 0.55, 200, None)]
    method, path, body, headers = client.sent[0]
    assert (method, path) == ("POST", "/orders")
    assert headers["X-Intended-Start"] == "100.000000"
    assert body is not None and json.loads(body)["sku"]
    assert log.in_flight == {"sync": 0, "async": 0}
    assert log.latency.count("sync", "checkout") == 1
    assert journeys.health.sent == 1
    assert journeys.health.send_lag.sum_s("0", "sync") == 0.5  # sent half a second late


def test_an_impatient_shopper_retries_only_a_request_with_no_answer(tmp_path: Path) -> None:
    clock = FakeClock()
    journeys, log, heard = _journeys(tmp_path, clock, retries=2)
    client = FakeClient(clock, [TimeoutError("slow"), FakeResponse(503), FakeResponse(200)])
    journeys.journey(client, "sync", 100.0)
    records = _records(log, tmp_path)
    assert [(r.attempt, r.status) for r in records] == [(0, 0), (1, 503)]  # a 503 is an answer
    assert journeys.health.sent == 1  # one arrival sent, whatever its retries
    assert [(name, error) for name, _, _, error in heard.calls] == [
        ("sync checkout", "no answer: TimeoutError"),
        ("sync checkout retry", "HTTP 503"),
    ]


def test_an_answer_without_its_id_is_a_failure(tmp_path: Path) -> None:
    clock = FakeClock()
    journeys, log, heard = _journeys(tmp_path, clock)
    journeys.journey(FakeClient(clock, [FakeResponse(200, b"{}")]), "sync", 100.0)
    assert heard.calls[0][3] == "answer without order_id"
    assert _records(log, tmp_path)[0].order_id == ""


def test_an_accepted_order_is_followed_until_fulfilled(tmp_path: Path) -> None:
    clock = FakeClock()
    journeys, log, heard = _journeys(tmp_path, clock)
    answers: list[FakeResponse | BaseException] = [
        FakeResponse(202, b'{"order_id": "o-2"}', {"location": "/orders/o-2"}),
        FakeResponse(200, b'{"status": "pending"}'),
        OSError("reset"),
        FakeResponse(200, b'{"status": "fulfilled"}'),
    ]
    client = FakeClient(clock, answers)
    journeys.journey(client, "async", 100.0)
    checkout, fulfilment = _records(log, tmp_path)
    assert (checkout.status, fulfilment.kind, fulfilment.status, fulfilment.order_id) == (
        202,
        "fulfillment",
        200,
        "o-2",
    )
    assert [path for _, path, _, _ in client.sent] == [
        "/orders?x=1",
        "/orders/o-2",
        "/orders/o-2",
        "/orders/o-2",
    ]
    assert heard.calls[-1][0] == "async fulfillment"


def test_a_follow_gives_up_after_its_deadline(tmp_path: Path) -> None:
    clock = FakeClock()
    journeys, log, heard = _journeys(tmp_path, clock)
    pending = [FakeResponse(200, b'{"status": "pending"}') for _ in range(10)]
    accepted = FakeResponse(202, b'{"order_id": "o-3"}', {"location": "/orders/o-3"})
    journeys.journey(FakeClient(clock, [accepted, *pending]), "async", 100.0)
    assert _records(log, tmp_path)[-1].status == 0
    assert heard.calls[-1][3] == "gave up waiting"


def test_an_arrival_runs_on_its_own_or_is_dropped_at_max_in_flight(tmp_path: Path) -> None:
    clock = FakeClock()
    spawned: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
    journeys, log, heard = _journeys(tmp_path, clock, max_in_flight=1, spawned=spawned)
    client = FakeClient(clock, [FakeResponse(200, b'{"order_id": "o-4"}')])
    journeys.arrive(client, "sync", 100.0)
    clock.now = 100.5
    journeys.arrive(client, "sync", 100.5)  # the first is in flight: the lane is full
    assert log.in_flight["sync"] == 1 and len(spawned) == 1
    assert (journeys.health.dropped, journeys.health.sent) == (1, 0)  # the spawned one has not run
    assert heard.calls == [("sync arrival dropped", 0.0, 0, "max_in_flight")]
    run, args = spawned[0]
    run(*args)  # the spawned journey, counted in flight before it ran, uncounts itself
    assert log.in_flight["sync"] == 0
    assert [(r.kind, r.intended_start) for r in _records(log, tmp_path)] == [
        ("dropped", 100.5),
        ("checkout", 100.0),
    ]


def test_a_checkout_ends_when_its_answer_arrived_if_the_client_knows(tmp_path: Path) -> None:
    """An answer read late by a busy generator still ended when it arrived."""
    clock = FakeClock()
    journeys, log, heard = _journeys(tmp_path, clock)
    answer = FakeResponse(200, b'{"order_id": "s1"}', arrived=100.2)
    journeys.journey(FakeClient(clock, [answer], took=0.5), "sync", 100.0)
    log.close()
    (rec,) = read_requests(tmp_path / "requests.jsonl")
    assert (rec.start, rec.end) == (100.0, 100.2)
    assert heard.calls == [("sync checkout", 0.2, 200, None)]
