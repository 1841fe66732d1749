"""Black Friday shoppers for both lanes, with one arrival process for both.

Run by ``doorbuster run`` (headless, maybe distributed), or by hand with Locust's web UI::

    locust -f locustfiles/black_friday.py          # needs a running stack: doorbuster up

The scenario (``$DOORBUSTER_SCENARIO``, a shipped name or a file) decides everything:

- **open model** (default): arrivals at the scenario's rate however slow the answers get, as
  k6's constant-arrival-rate executor does; each arrival is its own greenlet, and its latency
  is measured from its *intended* start, so a stall is not hidden (coordinated omission).
- **closed model**: N users per lane, each waiting for its answer and ``think_time``.
- distributed (``--workers N``): one arrival schedule, worker i of N sending arrivals i, i+N,
  ... of it from one start the master sends, so the merged arrivals are the scenario's own;
- impatient shoppers retry a checkout that timed out (``load.impatient``);
- the async shopper follows ``Location`` with back-off until its order is fulfilled, so a 202
  and a finished order are never the same thing.

The chaos timeline runs in the master (or the single local process) from the arrival
schedule's start (test start, or once every worker is ready); every fault it applied is
removed at test stop and on quit.  Every request is recorded, with its
intended start, in ``requests.jsonl`` in the run directory (workers send theirs to the
master), and Locust's figures, with a latency histogram counted from those records, are
exported to Prometheus on the topology's exporter port.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import loopback  # noqa: E402, F401 - Locust's web UI and master bind 127.0.0.1 by default
from geventhttpclient import HTTPClient  # noqa: E402
from live_tab import add_live_tab  # noqa: E402
from locust import LoadTestShape, User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402
from prometheus_client import CollectorRegistry, start_http_server  # noqa: E402
from prometheus_client.core import (  # noqa: E402
    CounterMetricFamily,
    GaugeMetricFamily,
)

from harness.config.files import read_text  # noqa: E402
from harness.config.scenarios import load_scenario  # noqa: E402
from harness.config.systems import default_system  # noqa: E402
from harness.faults.chaos import Chaos  # noqa: E402
from harness.faults.leases import FaultLease  # noqa: E402
from harness.faults.timeline import ChaosTimeline  # noqa: E402
from harness.load.arrivals import arrival_times  # noqa: E402
from harness.load.latency_histogram import LatencyHistogram, Snapshot  # noqa: E402
from harness.records.schema import RequestRecord  # noqa: E402
from harness.stack.control import Stack  # noqa: E402
from harness.stack.state import StateDir, default_state_dir  # noqa: E402
from model import metric_names as names  # noqa: E402
from model.buckets import LATENCY_BUCKETS  # noqa: E402
from model.errors import DoorbusterError  # noqa: E402
from model.headers import DEADLINE_HEADER  # noqa: E402
from model.scenario import Scenario  # noqa: E402
from model.system import FollowSpec, LaneSpec, expand  # noqa: E402
from model.topology import Topology, is_loopback  # noqa: E402

__all__ = [
    "Arrivals",
    "AsyncShopper",
    "BlackFridayShape",
    "SyncShopper",
]


def _targets(topology: Topology | None) -> dict[str, tuple[str, int]]:
    """Where each lane's orders go: the stack's order services, or ``$DOORBUSTER_TARGETS``
    (``{"sync": "http://host:port", ...}``); hosts off loopback only when named in
    ``$DOORBUSTER_ALLOW_HOSTS`` (comma-separated)."""
    raw = os.environ.get("DOORBUSTER_TARGETS")
    if not raw:
        if topology is None:
            raise SystemExit("doorbuster: no stack is running; start it with: doorbuster up")
        return {
            lane: (topology.order_service(lane).host, topology.order_service(lane).port)
            for lane in topology.lanes
        }
    allowed = {h.strip() for h in os.environ.get("DOORBUSTER_ALLOW_HOSTS", "").split(",") if h.strip()}
    try:
        urls = {str(k): urlsplit(str(v)) for k, v in json.loads(raw).items()}
        targets = {lane: (str(u.hostname), int(u.port or 80)) for lane, u in urls.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise SystemExit(f"doorbuster: DOORBUSTER_TARGETS: expected {{lane: url}} JSON ({exc})") from None
    for lane, (host, _) in targets.items():
        if not is_loopback(host) and host not in allowed:
            raise SystemExit(
                f"doorbuster: refusing to send load to {host} ({lane}): not a loopback address; "
                "name it in DOORBUSTER_ALLOW_HOSTS to allow it"
            )
    return targets


def _start_at() -> float | None:
    """``DOORBUSTER_START_AT``: when the arrival schedule starts, as a Unix time (optional)."""
    text = os.environ.get("DOORBUSTER_START_AT")
    if not text:
        return None
    try:
        start = float(text)
    except ValueError:
        start = math.nan
    if not math.isfinite(start) or abs(start - time.time()) > 3600:
        raise SystemExit(f"doorbuster: DOORBUSTER_START_AT={text!r}: expected a Unix time within the hour")
    return start


def _load() -> tuple[Scenario, Topology | None, dict[str, tuple[str, int]], Path, int]:
    try:
        scenario, _ = load_scenario(os.environ.get("DOORBUSTER_SCENARIO", "black-friday"))
    except DoorbusterError as exc:
        raise SystemExit(f"doorbuster: {type(exc).__name__}: {exc}") from None
    topology: Topology | None = None
    try:
        stack_file = os.environ.get("DOORBUSTER_STACK_FILE")  # a stack run by other means (compose)
        if stack_file:
            topology = Topology.from_json(read_text(Path(stack_file)))
        else:
            topology = Stack(StateDir(default_state_dir())).running_topology()
    except (DoorbusterError, OSError, ValueError) as exc:
        # A worker only sends load (the master runs the chaos), so targets are all it needs.
        needs_stack = scenario.chaos and "--worker" not in sys.argv
        if needs_stack or not os.environ.get("DOORBUSTER_TARGETS"):
            raise SystemExit(f"doorbuster: {type(exc).__name__}: {exc}") from None
    if topology is not None:
        running = topology.settings.model_copy(update={"ports": scenario.stack.ports})
        if running != scenario.stack and "DOORBUSTER_RUN_DIR" not in os.environ:
            print(
                f"doorbuster: warning: the running stack's settings are not scenario {scenario.name}'s; "
                f"restart it with: doorbuster down && doorbuster up --scenario {scenario.name}",
                file=sys.stderr,
            )
    targets = _targets(topology)
    missing = [lane for lane in scenario.load.lanes if lane not in targets]
    if missing:
        raise SystemExit(f"doorbuster: DOORBUSTER_TARGETS has no URL for lane(s) {missing}")
    run_dir = Path(
        os.environ.get("DOORBUSTER_RUN_DIR")
        or ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario.name}-locust"
    )
    if "--worker" not in sys.argv and (run_dir / "requests.jsonl").exists():
        # Appending would mix two runs' records in one log, and the report would read both.
        raise SystemExit(
            f"doorbuster: {run_dir / 'requests.jsonl'} already exists (an earlier run's records); "
            "set DOORBUSTER_RUN_DIR to a new directory, or remove that file"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return scenario, topology, targets, run_dir, max(1, int(os.environ.get("DOORBUSTER_WORKERS", "1")))


SCENARIO, TOPOLOGY, TARGETS, RUN_DIR, WORKERS = _load()
START_AT = _start_at()
LOAD = SCENARIO.load


def _requests() -> dict[str, tuple[LaneSpec, str]]:
    """Each lane's request (the system file's) and the path it goes to on its target."""
    try:
        system = SCENARIO.stack.system or default_system()
    except DoorbusterError as exc:
        raise SystemExit(f"doorbuster: {type(exc).__name__}: {exc}") from None
    found: dict[str, tuple[LaneSpec, str]] = {}
    for lane in LOAD.lanes:
        spec = system.lanes.get(lane)  # type: ignore[call-overload]
        if spec is None:
            raise SystemExit(f"doorbuster: system {system.name} has no {lane} lane")
        # Only the path is used: the target (the stack's, or DOORBUSTER_TARGETS) gives the host.
        url = urlsplit(expand(spec.url, TOPOLOGY.address_values() if TOPOLOGY else system.url_stand_ins()))
        found[lane] = (spec, (url.path or "/") + (f"?{url.query}" if url.query else ""))
    return found


REQUESTS = _requests()
SKUS = ("tv-55", "console", "headphones", "laptop", "blender", "sneakers", "drone", "camera")
# Returning shoppers: a customer may order again while their first order is still queued, so
# whether a broker keeps one customer's orders in order is measurable (worker out-of-order).
CUSTOMERS = 2000


class RequestLog:
    """Every request, with its intended start, and the latency histogram counted from the
    same times; workers batch theirs to the master."""

    def __init__(self) -> None:
        self.environment: Environment | None = None
        self._buffer: list[dict[str, Any]] = []
        self._file: Any = None
        self._created = False
        self.in_flight: dict[str, int] = dict.fromkeys(LOAD.lanes, 0)
        self.remote_in_flight: dict[str, dict[str, int]] = {}
        self.latency = LatencyHistogram(LATENCY_BUCKETS)
        self.remote_latency: dict[str, Snapshot] = {}
        self.remote_generating: dict[str, bool] = {}

    @property
    def is_worker(self) -> bool:
        return isinstance(self.environment and self.environment.runner, WorkerRunner)

    def open(self) -> None:
        if not self.is_worker and self._file is None:
            # Created by this process ("x" fails on an existing log); only reopened for append.
            mode = "a" if self._created else "x"
            self._file = open(RUN_DIR / "requests.jsonl", mode, buffering=1)  # noqa: SIM115
            self._created = True

    def record(
        self,
        intended: float,
        lane: str,
        kind: str,
        code: int,
        attempt: int,
        order_id: str,
        *,
        start: float | None,
    ) -> float:
        """Log one request; returns its end time, for the figures taken from the same record."""
        end = time.time()
        rec = RequestRecord.made(
            lane=lane, kind=kind, intended_start=intended, start=start, end=end,
            status=code, order_id=order_id, attempt=attempt,
        )  # fmt: skip
        if self._file is not None:
            self._file.write(json.dumps(rec.to_json()) + "\n")
        else:
            self._buffer.append(rec.to_json())
        return end

    def flush_to_master(self) -> None:
        if self.environment is None or not self.is_worker:
            return
        rows, self._buffer = self._buffer, []
        runner = self.environment.runner
        assert runner is not None
        runner.send_message(
            "doorbuster_log",
            {
                "rows": rows,
                "in_flight": self.in_flight,
                "latency": self.latency.snapshot(),  # the whole histogram so far: a lost batch heals
                "generating": SCHEDULE.generating,
                "id": runner.client_id,  # type: ignore[attr-defined]
            },
        )

    def on_worker_rows(self, msg: Any, **_: Any) -> None:
        self.open()
        for row in msg.data["rows"]:
            # A worker's records are the same objects, checked as any reader checks them.
            self._file.write(json.dumps(RequestRecord.from_json(row).to_json()) + "\n")
        self.remote_in_flight[msg.data["id"]] = msg.data["in_flight"]
        self.remote_latency[msg.data["id"]] = msg.data["latency"]
        self.remote_generating[msg.data["id"]] = msg.data["generating"]

    def latency_histogram(self) -> LatencyHistogram:
        """This process's latencies and every worker's, added up."""
        return LatencyHistogram.merged(
            LATENCY_BUCKETS, [self.latency.snapshot(), *self.remote_latency.values()]
        )

    def workers_generating(self) -> int:
        """Workers whose last report said their arrivals were not all sent yet."""
        return sum(self.remote_generating.values())

    def total_in_flight(self) -> int:
        return sum(self.in_flight.values()) + sum(sum(v.values()) for v in self.remote_in_flight.values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


LOG = RequestLog()


def _lane_and_kind(name: str) -> tuple[str, str]:
    """A request name ("sync checkout retry") as the exporter's labels (sync, checkout_retry)."""
    lane, _, kind = name.partition(" ")
    return lane, kind.replace(" ", "_")


def _fire(
    env: Environment,
    name: str,
    started: float,
    ended: float,
    code: int,
    length: int = 0,
    error: str | None = None,
) -> None:
    """Report one recorded request to Locust, and to the exact histogram with the same times."""
    LOG.latency.observe(*_lane_and_kind(name), ended - started)
    env.events.request.fire(
        request_type="POST" if "checkout" in name else "GET",
        name=name,
        response_time=(ended - started) * 1000.0,
        response_length=length,
        exception=Exception(error) if error else None,
        context={"code": code},
    )


def _client(lane: str, concurrency: int) -> HTTPClient:
    host, port = TARGETS[lane]
    return HTTPClient(
        host,
        port,
        concurrency=concurrency,
        connection_timeout=LOAD.impatient.timeout,
        network_timeout=LOAD.impatient.timeout,
    )


def _body(spec: LaneSpec) -> bytes | None:
    """The lane's body template, with this request's draw of shopper, item and quantity."""
    if spec.body is None:
        return None
    values = {
        "request_id": uuid.uuid4().hex,
        "customer": f"shopper-{random.randrange(CUSTOMERS)}",
        "sku": random.choice(SKUS),
        "qty": str(random.randint(1, 3)),
    }
    return expand(spec.body, values).encode()


def journey(env: Environment, client: HTTPClient, lane: str, intended: float) -> None:
    """One shopper's checkout (retried if impatient), then, for async, until fulfilled."""
    LOG.in_flight[lane] += 1
    _counted_journey(env, client, lane, intended)


def _counted_journey(env: Environment, client: HTTPClient, lane: str, intended: float) -> None:
    """A journey its caller already counted in flight."""
    try:
        for attempt in range(LOAD.impatient.retries + 1):
            name = f"{lane} checkout" if attempt == 0 else f"{lane} checkout retry"
            sent = time.time()
            code, location, order_id, error, length = _send(client, lane, intended)
            ended = LOG.record(intended, lane, "checkout", code, attempt, order_id, start=sent)
            _fire(env, name, intended, ended, code, length, error)
            spec = REQUESTS[lane][0]
            if 200 <= code <= 299:
                if spec.follow is not None and location:
                    _follow(env, client, lane, intended, location, order_id, spec.follow)
                return
            if code != 0:  # an answer, even an error, is not what makes a shopper retry
                return
    finally:
        LOG.in_flight[lane] -= 1


def _send(client: HTTPClient, lane: str, intended: float) -> tuple[int, str, str, str | None, int]:
    """The lane's request: (status, where to follow it, its id, error, answer length)."""
    spec, path = REQUESTS[lane]
    # The intended start travels with the request, so a server can measure the latency a
    # shopper really saw, coordinated omission included; and so does how long the shopper waits
    # for this answer, for a lane that propagates deadlines (sync.retry.policy: deadline).
    headers = {
        **spec.headers,
        "X-Intended-Start": f"{intended:.6f}",
        DEADLINE_HEADER: str(math.floor(LOAD.impatient.timeout * 1000)),
    }
    body = _body(spec)
    try:
        response = client.request(spec.method, path, body=body, headers=headers)
        data = response.read()
    except (OSError, gevent.Timeout) as exc:  # geventhttpclient raises socket timeouts as OSError
        return 0, "", "", f"no answer: {type(exc).__name__}", 0
    code = response.status_code
    answer_id = _answer_id(spec, data)
    if not 200 <= code <= 299:
        # A failed order may still have an id (a sync 502): its side effects are counted.
        return code, "", answer_id or "", f"HTTP {code}", len(data)
    if spec.id_field is not None and answer_id is None:
        return code, "", "", f"answer without {spec.id_field}", len(data)
    return code, _location(spec, response, data), answer_id or uuid.uuid4().hex, None, len(data)


def _answer_id(spec: LaneSpec, data: bytes) -> str | None:
    if spec.id_field is None:
        return None
    try:
        value = json.loads(data)[spec.id_field]
    except (ValueError, KeyError, TypeError):
        return None
    return str(value)


def _location(spec: LaneSpec, response: Any, data: bytes) -> str:
    """Where to follow an accepted request: a header or a JSON field of the answer."""
    if spec.follow is None:
        return ""
    source, _, name = spec.follow.location.partition(":")
    if source == "header":
        return str(response.get(name.lower()) or "")
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(json.loads(data)[name])
    return ""


def _follow(
    env: Environment,
    client: HTTPClient,
    lane: str,
    intended: float,
    location: str,
    order_id: str,
    rule: FollowSpec,
) -> None:
    delay = LOAD.poll.initial
    following = time.time()
    deadline = following + LOAD.poll.give_up
    while time.time() < deadline:
        gevent.sleep(delay)
        delay = min(delay * 2, LOAD.poll.max)
        try:
            response = client.get(location)
            status = json.loads(response.read()).get(rule.status_field)
        except (OSError, ValueError, AttributeError, gevent.Timeout):
            continue
        if status in rule.done:
            ended = LOG.record(intended, lane, "fulfillment", 200, 0, order_id, start=following)
            _fire(env, f"{lane} fulfillment", intended, ended, 200)
            return
        if status in rule.failed:
            ended = LOG.record(intended, lane, "fulfillment", 500, 0, order_id, start=following)
            _fire(env, f"{lane} fulfillment", intended, ended, 500, error="order failed")
            return
    ended = LOG.record(intended, lane, "fulfillment", 0, 0, order_id, start=following)
    _fire(env, f"{lane} fulfillment", intended, ended, 0, error="gave up waiting")


# -- open model: arrival generators ----------------------------------------------------------
# How long a distributed run waits for every worker's generator to be ready to start.
START_TIMEOUT_S = 30.0
# From the master's start message to the first arrival: time for the message to reach the
# workers, so none of them starts late and sends its first arrivals in a catch-up burst.
START_ALLOWANCE_S = 0.1


class _Schedule:
    """This process's part of the one arrival schedule: which segment it runs, and when the
    schedule starts.  In a distributed run the master picks the start once every worker's
    generator is ready and sends it to all, so the segments interleave from the first arrival
    and the chaos timeline starts with them."""

    def __init__(self) -> None:
        self.segment = 0
        self.segments = 1
        self.start: float | None = None
        self.started = gevent.event.Event()
        self.claimed = False  # one generator per process, however many Arrivals users land here
        self.generating = False  # claimed and not through the schedule yet
        self.ready: set[str] = set()  # in the master: workers whose generator waits for the start

    def reset(self) -> None:
        self.start = None
        self.started.clear()
        self.claimed = self.generating = False
        self.ready.clear()

    def begin(self, start: float) -> None:
        self.start = start
        self.started.set()


SCHEDULE = _Schedule()


class Arrivals(User):
    """Generates this process's segment of the arrival schedule, one arrival per lane at each
    arrival time (one process for both lanes); each arrival runs as its own greenlet.

    Worker i of N takes arrivals i, i + N, i + 2N, ... (k6's execution segments), so the
    merged arrivals are exactly the single-process schedule, not N copies of it in phase.
    One user per process: Locust's dispatcher spreads the N users of one class one per worker.
    """

    wait_time = constant(0)

    def on_start(self) -> None:
        self.clients = {lane: _client(lane, LOAD.max_in_flight) for lane in LOAD.lanes}

    @task
    def arrive(self) -> None:
        if SCHEDULE.claimed:  # the schedule is bounded; once it is over, idle until stopped
            gevent.sleep(1)
            return
        SCHEDULE.claimed = SCHEDULE.generating = True
        try:
            self._generate()
        finally:
            SCHEDULE.generating = False

    def _generate(self) -> None:
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message("doorbuster_ready", {"id": runner.client_id})
        if not SCHEDULE.started.wait(timeout=START_TIMEOUT_S) or SCHEDULE.start is None:
            raise RuntimeError(
                f"doorbuster: no arrival schedule start from the master within {START_TIMEOUT_S:g}s"
            )
        stages = [(stage.duration, stage.rate) for stage in LOAD.stages]
        for offset in arrival_times(stages, SCHEDULE.segment, SCHEDULE.segments):
            intended = SCHEDULE.start + offset
            delay = intended - time.time()
            if delay > 0:
                gevent.sleep(delay)
            for lane in LOAD.lanes:
                if LOG.in_flight[lane] >= LOAD.max_in_flight:
                    ended = LOG.record(intended, lane, "dropped", 0, 0, "", start=None)
                    name = f"{lane} arrival dropped"
                    _fire(self.environment, name, intended, ended, 0, error="max_in_flight")
                    continue
                # Counted before it runs, so no report to the master sees it neither generated
                # nor in flight (the master would stop the test on it).
                LOG.in_flight[lane] += 1
                gevent.spawn(_counted_journey, self.environment, self.clients[lane], lane, intended)


# -- closed model: users who wait for their answer -------------------------------------------
class _Shopper(User):
    abstract = True
    lane = ""
    wait_time = constant(LOAD.think_time)

    def on_start(self) -> None:
        self.client = _client(self.lane, 2)

    @task
    def checkout(self) -> None:
        journey(self.environment, self.client, self.lane, time.time())


class SyncShopper(_Shopper):
    lane = "sync"


class AsyncShopper(_Shopper):
    lane = "async"


_SHOPPERS: dict[str, type[User]] = {"sync": SyncShopper, "async": AsyncShopper}


class BlackFridayShape(LoadTestShape):
    """The scenario's stages; then, bounded, time for in-flight journeys to finish."""

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        elapsed = self.get_run_time()
        # Open model: one Arrivals user per load process (the master runs none of its own).
        generators = WORKERS if isinstance(self.runner, MasterRunner) else 1
        classes: list[type[User]] = (
            [Arrivals] if LOAD.model == "open" else [_SHOPPERS[lane] for lane in LOAD.lanes]
        )
        if LOAD.model == "open":
            if SCHEDULE.start is None:  # the workers' generators are not all ready yet
                if elapsed < START_TIMEOUT_S:
                    return generators, 100.0, classes
                print(
                    f"doorbuster: {len(SCHEDULE.ready)} of {WORKERS} workers' arrival generators "
                    f"were ready after {START_TIMEOUT_S:g}s: stopping",
                    file=sys.stderr,
                )
                return None
            elapsed = time.time() - SCHEDULE.start
        if elapsed < LOAD.duration_s:
            if LOAD.model == "open":
                return generators, 100.0, classes
            stage = LOAD.stage_at(elapsed)
            users = int(stage.rate) * len(classes) if stage else 0
            return users, max(1.0, float(users)), classes
        grace = min(SCENARIO.drain_timeout, LOAD.poll.give_up + LOAD.impatient.timeout)
        busy = LOG.total_in_flight() > 0 or LOG.workers_generating() > 0
        if busy and elapsed < LOAD.duration_s + grace:
            return (generators if LOAD.model == "open" else 0), 100.0, classes
        return None


# -- Prometheus exporter ------------------------------------------------------------------------
class LocustCollector:
    """Locust's client-side figures, per lane, from its merged stats (so workers count too)."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.started = time.time()

    def collect(self) -> Iterator[Any]:
        stats = self.environment.stats
        requests = CounterMetricFamily(
            names.LOCUST_REQUESTS, "Requests by lane and kind.", labels=["lane", "kind"]
        )
        failures = CounterMetricFamily(names.LOCUST_FAILURES, "Failed requests.", labels=["lane", "kind"])
        arrivals = CounterMetricFamily(
            names.LOCUST_ARRIVALS, "Shopper arrivals (first attempts).", labels=["lane"]
        )
        for entry in stats.entries.values():
            lane, kind = _lane_and_kind(entry.name)
            if lane not in ("sync", "async"):
                continue
            requests.add_metric([lane, kind], entry.num_requests)
            failures.add_metric([lane, kind], entry.num_failures)
            if kind in ("checkout", "arrival_dropped"):
                arrivals.add_metric([lane], entry.num_requests)
        # From the recorded times, not Locust's response times (rounded to 2 significant digits).
        latency = LOG.latency_histogram().metric_family(
            names.LOCUST_REQUEST_DURATION, "Latency from intended start, as the shopper saw it."
        )
        yield from (requests, failures, arrivals, latency)
        target = GaugeMetricFamily(names.LOCUST_ARRIVAL_RATE_TARGET, "Set arrival rate.", labels=["lane"])
        in_flight = GaugeMetricFamily(names.LOCUST_IN_FLIGHT, "Shopper journeys in flight.", labels=["lane"])
        runner = self.environment.runner
        running = runner is not None and runner.state in ("spawning", "running")
        stage = LOAD.stage_at(time.time() - self.started) if running else None
        for lane in LOAD.lanes:
            target.add_metric([lane], stage.rate if stage and LOAD.model == "open" else 0.0)
            remote = sum(v.get(lane, 0) for v in LOG.remote_in_flight.values())
            in_flight.add_metric([lane], LOG.in_flight[lane] + remote)
        yield target
        yield in_flight
        users = GaugeMetricFamily(names.LOCUST_USERS, "Locust users running.")
        users.add_metric([], runner.user_count if runner is not None else 0)
        yield users


# -- wiring ---------------------------------------------------------------------------------------
class _Control:
    timeline: ChaosTimeline | None = None
    greenlet: gevent.Greenlet[..., None] | None = None
    stopped = False
    collector: LocustCollector | None = None


_control = _Control()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    LOG.environment = environment
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("doorbuster_log", LOG.on_worker_rows)
        runner.register_message("doorbuster_ready", _on_worker_ready)
    if isinstance(runner, WorkerRunner):
        _take_segment(runner)
        runner.register_message("doorbuster_schedule", _on_schedule)
        gevent.spawn(_flush_forever)
        return
    LOG.open()
    if TOPOLOGY is None:
        return  # no stack: no exporter port to use, and no chaos to run
    if environment.web_ui is not None:
        add_live_tab(environment.web_ui, TOPOLOGY.endpoint("live").url)
    registry = CollectorRegistry()
    _control.collector = LocustCollector(environment)
    registry.register(_control.collector)
    exporter = TOPOLOGY.endpoint("locust-exporter")
    try:
        start_http_server(exporter.port, addr=exporter.host, registry=registry)
    except OSError as exc:
        print(f"doorbuster: Locust exporter not started on {exporter.address}: {exc}", file=sys.stderr)


def _take_segment(runner: WorkerRunner) -> None:
    """Worker i of N runs segment i of the schedule; a worker without a valid index refuses to
    start, since running any other worker's segment would send its arrivals twice."""
    index = runner.worker_index
    if LOAD.model == "open" and not 0 <= index < WORKERS:
        known = f"index {index}" if index >= 0 else "no index (the master did not send one)"
        print(
            f"doorbuster: this Locust worker has {known}, but an open-model run of "
            f"{WORKERS} worker(s) (DOORBUSTER_WORKERS) needs 0..{WORKERS - 1}: refusing to start, "
            "as its arrivals would duplicate another worker's. Start exactly DOORBUSTER_WORKERS "
            "workers against a fresh master.",
            file=sys.stderr,
        )
        runner.quit()
        raise SystemExit(2)
    SCHEDULE.segment, SCHEDULE.segments = index, WORKERS


def _on_schedule(msg: Any, **_: Any) -> None:
    SCHEDULE.begin(float(msg.data["start"]))


def _on_worker_ready(environment: Environment, msg: Any, **_: Any) -> None:
    SCHEDULE.ready.add(str(msg.data["id"]))
    if SCHEDULE.start is not None or len(SCHEDULE.ready) < WORKERS:
        return
    start = _schedule_start(START_ALLOWANCE_S)
    SCHEDULE.begin(start)
    assert environment.runner is not None
    environment.runner.send_message("doorbuster_schedule", {"start": start})
    _start_timeline(start)


def _flush_forever() -> None:
    while True:
        gevent.sleep(1.0)
        LOG.flush_to_master()


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    SCHEDULE.reset()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return  # the master sends the start once every worker's generator is ready
    if isinstance(runner, MasterRunner) and LOAD.model == "open":
        LOG.remote_generating.clear()
        return  # the schedule, and the chaos timeline with it, start in _on_worker_ready
    start = _schedule_start(0.0)
    SCHEDULE.begin(start)
    _start_timeline(start)


def _schedule_start(after_s: float) -> float:
    """``DOORBUSTER_START_AT`` if set, else a start ``after_s`` from now.

    The start is a Unix time on a 0.1 ms tick: the log keeps intended starts to 0.1 ms,
    and the first arrival, at the start itself, must not read as before the timeline's t0.
    A start set from outside lets a benchmark know the schedule without asking the generator;
    if it has passed by then, the arrivals due are sent at once, late, and measured so.
    """
    return math.floor((START_AT or time.time() + after_s) * 10_000) / 10_000


def _start_timeline(at: float) -> None:
    """The chaos timeline, with its offsets from ``at`` (the arrival schedule's start)."""
    if TOPOLOGY is None:
        return
    if _control.collector is not None:
        _control.collector.started = at
    _control.stopped = False
    _control.timeline = ChaosTimeline(
        chaos=Chaos(TOPOLOGY),
        steps=SCENARIO.chaos,
        record_path=RUN_DIR / "chaos.json",
        lease=FaultLease(default_state_dir(), owner=f"locust run of {SCENARIO.name}"),
    )
    _control.greenlet = gevent.spawn(_control.timeline.run, gevent.sleep, lambda: _control.stopped, t0=at)


def _stop_timeline() -> None:
    _control.stopped = True
    if _control.greenlet is not None:
        _control.greenlet.join(timeout=10)
    if _control.timeline is not None:
        _control.timeline.stop()  # whatever is still applied, even if the greenlet died


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        LOG.flush_to_master()
        return
    _stop_timeline()
    SCHEDULE.reset()  # the shape's next test (web UI) waits for a new start, not this one's


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        LOG.flush_to_master()
        return
    _stop_timeline()
    LOG.close()
