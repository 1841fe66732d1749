"""Black Friday shoppers for both lanes, with one arrival process for both.

Run by ``doorbuster run`` (headless, maybe distributed), or by hand with Locust's web UI::

    locust -f locustfiles/black_friday.py          # needs a running stack: doorbuster up

The scenario (``$DOORBUSTER_SCENARIO``, a shipped name or a file) decides everything:

- **open model** (default): arrivals at the scenario's rate however slow the answers get, as
  k6's constant-arrival-rate executor does; each arrival is its own greenlet, and its latency
  is measured from its *intended* start, so a stall is not hidden (coordinated omission).
- **closed model**: N users per lane, each waiting for its answer and ``think_time``.
- impatient shoppers retry a checkout that timed out (``load.impatient``);
- the async shopper follows ``Location`` with back-off until its order is fulfilled, so a 202
  and a finished order are never the same thing.

The chaos timeline runs in the master (or the single local process) from test start; every
fault it applied is removed at test stop and on quit.  Every request is recorded, with its
intended start, in ``requests.jsonl`` in the run directory (workers send theirs to the
master), and Locust's figures are exported to Prometheus on the topology's exporter port.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gevent  # noqa: E402
from geventhttpclient import HTTPClient  # noqa: E402
from locust import LoadTestShape, User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402
from prometheus_client import CollectorRegistry, start_http_server  # noqa: E402
from prometheus_client.core import (  # noqa: E402
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from harness.arrivals import arrival_times  # noqa: E402
from harness.chaos import Chaos  # noqa: E402
from harness.errors import DoorbusterError  # noqa: E402
from harness.files import read_text  # noqa: E402
from harness.leases import FaultLease  # noqa: E402
from harness.scenario import Scenario, load_scenario  # noqa: E402
from harness.stack import Stack  # noqa: E402
from harness.state import StateDir, default_state_dir  # noqa: E402
from harness.timeline import ChaosTimeline  # noqa: E402
from harness.topology import LANES, Topology, is_loopback  # noqa: E402
from targets.metrics import LATENCY_BUCKETS  # noqa: E402

__all__ = [
    "AsyncArrivals",
    "AsyncShopper",
    "BlackFridayShape",
    "SyncArrivals",
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
            lane: (topology.order_service(lane).host, topology.order_service(lane).port) for lane in LANES
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
LOAD = SCENARIO.load
SKUS = ("tv-55", "console", "headphones", "laptop", "blender", "sneakers", "drone", "camera")
# Returning shoppers: a customer may order again while their first order is still queued, so
# whether a broker keeps one customer's orders in order is measurable (worker out-of-order).
CUSTOMERS = 2000


class RequestLog:
    """Every request, with its intended start; workers batch theirs to the master."""

    def __init__(self) -> None:
        self.environment: Environment | None = None
        self._buffer: list[list[Any]] = []
        self._file: Any = None
        self._created = False
        self.in_flight: dict[str, int] = dict.fromkeys(LOAD.lanes, 0)
        self.remote_in_flight: dict[str, dict[str, int]] = {}

    @property
    def is_worker(self) -> bool:
        return isinstance(self.environment and self.environment.runner, WorkerRunner)

    def open(self) -> None:
        if not self.is_worker and self._file is None:
            # Created by this process ("x" fails on an existing log); only reopened for append.
            mode = "a" if self._created else "x"
            self._file = open(RUN_DIR / "requests.jsonl", mode, buffering=1)  # noqa: SIM115
            self._created = True

    def record(self, intended: float, lane: str, kind: str, code: int, attempt: int, order_id: str) -> None:
        row = [round(intended, 4), round(time.time(), 4), lane, kind, code, attempt, order_id]
        if self._file is not None:
            self._file.write(json.dumps(row) + "\n")
        else:
            self._buffer.append(row)

    def flush_to_master(self) -> None:
        if self.environment is None or not self.is_worker:
            return
        rows, self._buffer = self._buffer, []
        runner = self.environment.runner
        assert runner is not None
        runner.send_message(
            "doorbuster_log", {"rows": rows, "in_flight": self.in_flight, "id": runner.client_id}
        )  # type: ignore[attr-defined]

    def on_worker_rows(self, msg: Any, **_: Any) -> None:
        self.open()
        for row in msg.data["rows"]:
            self._file.write(json.dumps(row) + "\n")
        self.remote_in_flight[msg.data["id"]] = msg.data["in_flight"]

    def total_in_flight(self) -> int:
        return sum(self.in_flight.values()) + sum(sum(v.values()) for v in self.remote_in_flight.values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


LOG = RequestLog()


def _fire(
    env: Environment, name: str, started: float, code: int, length: int = 0, error: str | None = None
) -> None:
    env.events.request.fire(
        request_type="POST" if "checkout" in name else "GET",
        name=name,
        response_time=(time.time() - started) * 1000.0,
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


def _body() -> bytes:
    items = [{"sku": random.choice(SKUS), "qty": random.randint(1, 3)}]
    return json.dumps({"customer_id": f"shopper-{random.randrange(CUSTOMERS)}", "items": items}).encode()


def journey(env: Environment, client: HTTPClient, lane: str, intended: float) -> None:
    """One shopper's checkout (retried if impatient), then, for async, until fulfilled."""
    LOG.in_flight[lane] += 1
    try:
        for attempt in range(LOAD.impatient.retries + 1):
            name = f"{lane} checkout" if attempt == 0 else f"{lane} checkout retry"
            code, location, order_id, error, length = _post(client, intended)
            _fire(env, name, intended, code, length, error)
            LOG.record(intended, lane, "checkout", code, attempt, order_id)
            if code in (200, 202):
                if lane == "async" and location:
                    _follow(env, client, lane, intended, location, order_id)
                return
            if code != 0:  # an answer, even an error, is not what makes a shopper retry
                return
    finally:
        LOG.in_flight[lane] -= 1


def _post(client: HTTPClient, intended: float) -> tuple[int, str, str, str | None, int]:
    # The intended start travels with the request, so a server can measure the latency a
    # shopper really saw, coordinated omission included.
    headers = {"Content-Type": "application/json", "X-Intended-Start": f"{intended:.6f}"}
    try:
        response = client.post("/orders", body=_body(), headers=headers)
        data = response.read()
    except (OSError, gevent.Timeout) as exc:  # geventhttpclient raises socket timeouts as OSError
        return 0, "", "", f"no answer: {type(exc).__name__}", 0
    code = response.status_code
    order_id, location = "", ""
    if code in (502, 504):  # a failed sync order still has an id: its side effects are counted
        with contextlib.suppress(ValueError, KeyError, TypeError):
            order_id = str(json.loads(data)["order_id"])
    if code in (200, 202):
        try:
            order_id = str(json.loads(data)["order_id"])
        except (ValueError, KeyError):
            return code, "", "", "answer without order_id", len(data)
        location = response.get("location") or ""
        return code, location, order_id, None, len(data)
    return code, "", order_id, f"HTTP {code}", len(data)


def _follow(
    env: Environment, client: HTTPClient, lane: str, intended: float, location: str, order_id: str
) -> None:
    delay = LOAD.poll.initial
    deadline = time.time() + LOAD.poll.give_up
    while time.time() < deadline:
        gevent.sleep(delay)
        delay = min(delay * 2, LOAD.poll.max)
        try:
            response = client.get(location)
            status = json.loads(response.read()).get("status")
        except (OSError, ValueError, gevent.Timeout):
            continue
        if status == "fulfilled":
            _fire(env, f"{lane} fulfillment", intended, 200)
            LOG.record(intended, lane, "fulfillment", 200, 0, order_id)
            return
        if status == "failed":
            _fire(env, f"{lane} fulfillment", intended, 500, error="order failed")
            LOG.record(intended, lane, "fulfillment", 500, 0, order_id)
            return
    _fire(env, f"{lane} fulfillment", intended, 0, error="gave up waiting")
    LOG.record(intended, lane, "fulfillment", 0, 0, order_id)


# -- open model: arrival generators ----------------------------------------------------------
class _Arrivals(User):
    """Generates this lane's arrivals on schedule; each one runs as its own greenlet."""

    abstract = True
    lane = ""
    wait_time = constant(0)

    def on_start(self) -> None:
        self.client = _client(self.lane, LOAD.max_in_flight)
        self.started = False

    @task
    def arrive(self) -> None:
        if self.started:  # the schedule is bounded; once it is over, idle until stopped
            gevent.sleep(1)
            return
        self.started = True
        start = time.time()
        stages = [(stage.duration, stage.rate) for stage in LOAD.stages]
        for offset in arrival_times(stages, share=1.0 / WORKERS):
            intended = start + offset
            delay = intended - time.time()
            if delay > 0:
                gevent.sleep(delay)
            if LOG.in_flight[self.lane] >= LOAD.max_in_flight:
                _fire(self.environment, f"{self.lane} arrival dropped", intended, 0, error="max_in_flight")
                LOG.record(intended, self.lane, "dropped", 0, 0, "")
                continue
            gevent.spawn(journey, self.environment, self.client, self.lane, intended)


class SyncArrivals(_Arrivals):
    lane = "sync"


class AsyncArrivals(_Arrivals):
    lane = "async"


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


_CLASSES = {
    ("open", "sync"): SyncArrivals,
    ("open", "async"): AsyncArrivals,
    ("closed", "sync"): SyncShopper,
    ("closed", "async"): AsyncShopper,
}


class BlackFridayShape(LoadTestShape):
    """The scenario's stages; then, bounded, time for in-flight journeys to finish."""

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        elapsed = self.get_run_time()
        classes = [_CLASSES[(LOAD.model, lane)] for lane in LOAD.lanes]
        if elapsed < LOAD.duration_s:
            if LOAD.model == "open":
                return len(classes) * WORKERS, 100.0, classes
            stage = LOAD.stage_at(elapsed)
            users = int(stage.rate) * len(classes) if stage else 0
            return users, max(1.0, float(users)), classes
        grace = min(SCENARIO.drain_timeout, LOAD.poll.give_up + LOAD.impatient.timeout)
        if LOG.total_in_flight() > 0 and elapsed < LOAD.duration_s + grace:
            return (len(classes) * WORKERS if LOAD.model == "open" else 0), 100.0, classes
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
            "locust_requests", "Requests by lane and kind.", labels=["lane", "kind"]
        )
        failures = CounterMetricFamily("locust_failures", "Failed requests.", labels=["lane", "kind"])
        arrivals = CounterMetricFamily(
            "locust_arrivals", "Shopper arrivals (first attempts).", labels=["lane"]
        )
        latency = HistogramMetricFamily(
            "locust_request_duration_seconds",
            "Latency from intended start, as the shopper saw it.",
            labels=["lane", "kind"],
        )
        for entry in stats.entries.values():
            lane, _, kind = entry.name.partition(" ")
            if lane not in ("sync", "async"):
                continue
            kind = kind.replace(" ", "_")
            requests.add_metric([lane, kind], entry.num_requests)
            failures.add_metric([lane, kind], entry.num_failures)
            buckets, total = [], 0
            ordered = sorted(entry.response_times.items())
            i = 0
            for edge in LATENCY_BUCKETS:
                while i < len(ordered) and ordered[i][0] <= edge * 1000:
                    total += ordered[i][1]
                    i += 1
                buckets.append((str(edge), total))
            buckets.append(("+Inf", sum(entry.response_times.values())))
            latency.add_metric([lane, kind], buckets, entry.total_response_time / 1000.0)
            if kind in ("checkout", "arrival_dropped"):
                arrivals.add_metric([lane], entry.num_requests)
        yield from (requests, failures, arrivals, latency)
        target = GaugeMetricFamily("locust_arrival_rate_target", "Set arrival rate.", labels=["lane"])
        in_flight = GaugeMetricFamily("locust_in_flight", "Shopper journeys in flight.", labels=["lane"])
        runner = self.environment.runner
        running = runner is not None and runner.state in ("spawning", "running")
        stage = LOAD.stage_at(time.time() - self.started) if running else None
        for lane in LOAD.lanes:
            target.add_metric([lane], stage.rate if stage and LOAD.model == "open" else 0.0)
            remote = sum(v.get(lane, 0) for v in LOG.remote_in_flight.values())
            in_flight.add_metric([lane], LOG.in_flight[lane] + remote)
        yield target
        yield in_flight
        users = GaugeMetricFamily("locust_users", "Locust users running.")
        users.add_metric([], runner.user_count if runner is not None else 0)
        yield users


# -- wiring ---------------------------------------------------------------------------------------
class _Control:
    timeline: ChaosTimeline | None = None
    greenlet: gevent.Greenlet | None = None
    stopped = False
    collector: LocustCollector | None = None


_control = _Control()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    LOG.environment = environment
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("doorbuster_log", LOG.on_worker_rows)
    if isinstance(runner, WorkerRunner):
        gevent.spawn(_flush_forever)
        return
    LOG.open()
    if TOPOLOGY is None:
        return  # no stack: no exporter port to use, and no chaos to run
    registry = CollectorRegistry()
    _control.collector = LocustCollector(environment)
    registry.register(_control.collector)  # type: ignore[arg-type]
    exporter = TOPOLOGY.endpoint("locust-exporter")
    try:
        start_http_server(exporter.port, addr=exporter.host, registry=registry)
    except OSError as exc:
        print(f"doorbuster: Locust exporter not started on {exporter.address}: {exc}", file=sys.stderr)


def _flush_forever() -> None:
    while True:
        gevent.sleep(1.0)
        LOG.flush_to_master()


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or TOPOLOGY is None:
        return
    if _control.collector is not None:
        _control.collector.started = time.time()
    _control.stopped = False
    _control.timeline = ChaosTimeline(
        chaos=Chaos(TOPOLOGY),
        steps=SCENARIO.chaos,
        record_path=RUN_DIR / "chaos.json",
        lease=FaultLease(default_state_dir(), owner=f"locust run of {SCENARIO.name}"),
    )
    _control.greenlet = gevent.spawn(_control.timeline.run, gevent.sleep, lambda: _control.stopped)


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


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        LOG.flush_to_master()
        return
    _stop_timeline()
    LOG.close()
