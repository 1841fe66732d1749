"""Black Friday shoppers for both lanes, with one arrival process for both.

Run by ``doorbuster run`` (headless, maybe distributed), or by hand with Locust's web UI::

    locust -f locustfiles/black_friday.py          # needs a running stack: doorbuster up

The scenario (``$DOORBUSTER_SCENARIO``, a shipped name or a file) decides everything: the
**open model** (default) sends arrivals at its rate however slow the answers get, as k6's
constant-arrival-rate executor does, each in its own greenlet, its latency measured from its
*intended* start (no coordinated omission); the **closed model** runs N users per lane, each
waiting for its answer and ``think_time``. Distributed (``--workers N``), worker i of N sends
arrivals i, i+N, ... of one schedule from one start the master sends. Impatient shoppers retry
a checkout that timed out; the async shopper follows ``Location`` until its order is fulfilled.

The chaos timeline runs in the master (or the single local process) from the arrival
schedule's start (test start, or once every worker is ready), its faults removed at test stop
and on quit. Every request is recorded with its intended start, in ``requests.jsonl`` or in a
worker's shard that the master merges into it after the load (a worker on another host,
``DOORBUSTER_OWN_RUN_DIR=1``, sends its shard to the master in chunks); the master gets only
counts each second. Locust's figures, and a latency histogram counted from the records, go to
Prometheus on the topology's exporter port; each generator process watches its own health
(send lag, loop lag, CPU share, arrivals due but not sent) into ``generator.jsonl``.

The parts live in ``harness/load`` (none imports Locust or gevent): this file is the glue.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import loopback  # noqa: E402, F401 - Locust's web UI and master bind 127.0.0.1 by default
from live_tab import add_live_tab  # noqa: E402
from locust import LoadTestShape, User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.event import Events  # noqa: E402
from locust.exception import RPCSendError  # noqa: E402
from locust.rpc import Message  # noqa: E402
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, Runner, WorkerRunner  # noqa: E402
from locust.stats import bucket_response_time, setup_distributed_stats_event_listeners  # noqa: E402
from prometheus_client import CollectorRegistry, start_http_server  # noqa: E402
from shard_channel import ShardChannel  # noqa: E402

from harness.faults.chaos import Chaos  # noqa: E402
from harness.faults.leases import FaultLease  # noqa: E402
from harness.faults.timeline import ChaosTimeline  # noqa: E402
from harness.load.exporter import LoadCollector  # noqa: E402
from harness.load.generator_health import CpuReading, GeneratorHealth  # noqa: E402
from harness.load.generator_log import GeneratorLog  # noqa: E402
from harness.load.http_client import KeepAliveClient  # noqa: E402
from harness.load.journeys import Journeys  # noqa: E402
from harness.load.request_log import WORKER_REPORT, RequestLog, wait_for_shards  # noqa: E402
from harness.load.schedule import (  # noqa: E402
    SCHEDULE_MESSAGE,
    START_ALLOWANCE_S,
    START_TIMEOUT_S,
    WORKER_READY,
    ArrivalSchedule,
    schedule_start,
    segment_refusal,
)
from harness.load.settings import GeneratorRefused, GeneratorSettings, read_settings  # noqa: E402
from harness.load.stats_tally import StatsTally  # noqa: E402
from harness.records.generator import GeneratorSample  # noqa: E402
from harness.records.run_dir import RunDir  # noqa: E402
from harness.stack.state import default_state_dir  # noqa: E402
from model.errors import ConfigError  # noqa: E402

__all__ = [
    "Arrivals",
    "AsyncShopper",
    "BlackFridayShape",
    "SyncShopper",
]


def _warn(message: str) -> None:
    print(f"doorbuster: {message}", file=sys.stderr)


def _settings() -> GeneratorSettings:
    try:
        return read_settings(os.environ, sys.argv, warn=_warn)
    except GeneratorRefused as exc:
        raise SystemExit(f"doorbuster: {exc}") from None


SETTINGS = _settings()
SCENARIO, TOPOLOGY, LOAD, WORKERS = SETTINGS.scenario, SETTINGS.topology, SETTINGS.load, SETTINGS.workers
RUN_DIR = RunDir(SETTINGS.run_dir)
LOG = RequestLog(LOAD.lanes, RUN_DIR.requests, is_worker=SETTINGS.is_worker)
SCHEDULE = ArrivalSchedule(gevent.event.Event(), seed=SETTINGS.seed, replay=SETTINGS.replay)
# This process's health as a generator ("0" until a worker learns its index); the master's
# (or the single process's) log of every generator's samples.
HEALTH = GeneratorHealth("0", reading=CpuReading.now(), now=time.time())
GENERATORS = GeneratorLog(RUN_DIR.generator)
_unsent: list[GeneratorSample] = []  # a worker's samples, for its next report to the master
# The sampling greenlet: a timer every TICK_S measures how late the hub wakes it; a sample of
# the generator's health every SAMPLE_S while the test runs, and one when it stops.
TICK_S = 0.1
SAMPLE_S = 1.0
# How long the master waits, as it quits, for the workers to close (or send) their shards.
SHARD_WAIT_S = 15.0
SHARDS = ShardChannel(RUN_DIR, warn=_warn)  # a worker's shard sent when its run directory is its own


class _Control:
    environment: Environment | None = None
    timeline: ChaosTimeline | None = None
    greenlet: gevent.Greenlet[..., None] | None = None
    stopped = False
    collector: LoadCollector | None = None
    stats_merge: Events | None = None  # Locust's merge of a worker's stats report, into ours


_control = _Control()


# Locust's figures by request name, for its web UI, CSV and summary: counted here per request,
# merged into its stats once a second (FEED_S) by its own merge of a worker's report, instead
# of its request event and StatsEntry.log per request (doorbuster's exact record is its own).
TALLY = StatsTally(bucket=bucket_response_time)
FEED_S = 1.0


def _feed_stats() -> None:
    """The requests tallied since the last feed, into Locust's stats."""
    report = TALLY.drain()
    if not report.empty and _control.stats_merge is not None:
        _control.stats_merge.worker_report.fire(client_id="doorbuster", data=report.as_worker_report())


def _feed_forever() -> None:
    """Locust's stats fed, and the request log's writes flushed, once a second."""
    while True:
        gevent.sleep(FEED_S)
        _feed_stats()
        LOG.flush()


# The client raises OSError for no answer (a timeout, a refused or broken connection, what is
# not an HTTP answer); gevent.Timeout is gevent's own, should anything set one.
# The shoppers' choices draw from the run's seed (a worker reseeds with its segment).
JOURNEYS = Journeys(
    load=LOAD, requests=SETTINGS.requests, log=LOG, health=HEALTH, listener=TALLY.add,
    sleep=gevent.sleep, spawn=gevent.spawn, no_answer=(OSError, gevent.Timeout),
    rng=random.Random(f"{SETTINGS.seed}:0"),
)  # fmt: skip


def _client(lane: str) -> KeepAliveClient:
    """A lane's keep-alive connections: as many as its requests at once."""
    host, port = SETTINGS.targets[lane]
    timeout = LOAD.impatient.timeout
    return KeepAliveClient(host, port, timeout=timeout, connect_timeout=timeout)


# -- open model: arrival generators ----------------------------------------------------------
class Arrivals(User):
    """Generates this process's segment of the arrival schedule, one arrival per lane at each
    arrival time (one process for both lanes); each arrival runs as its own greenlet.

    One user per process: Locust's dispatcher spreads the N users of one class one per worker.
    """

    wait_time = constant(0)

    def on_start(self) -> None:
        self.clients = {lane: _client(lane) for lane in LOAD.lanes}

    @task
    def arrive(self) -> None:
        if SCHEDULE.claimed:  # the schedule is bounded; once it is over, idle until stopped
            gevent.sleep(1)
            return
        SCHEDULE.claimed = SCHEDULE.generating = True
        try:
            runner = self.environment.runner
            if isinstance(runner, WorkerRunner):
                runner.send_message(WORKER_READY, {"id": runner.client_id})
            clients = self.clients
            SCHEDULE.send(
                LOAD,
                arrive=lambda lane, intended: JOURNEYS.arrive(clients[lane], lane, intended),
                sleep=gevent.sleep,
                clock=time.time,
            )
        finally:
            SCHEDULE.generating = False


# -- closed model: users who wait for their answer -------------------------------------------
class _Shopper(User):
    abstract = True
    lane = ""
    wait_time = constant(LOAD.think_time)

    def on_start(self) -> None:
        self.client = _client(self.lane)

    @task
    def checkout(self) -> None:
        JOURNEYS.journey(self.client, self.lane, time.time())


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


# -- wiring ---------------------------------------------------------------------------------------
@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    _control.environment = environment
    runner = environment.runner
    if runner is not None:
        SHARDS.listen(runner)
    if isinstance(runner, MasterRunner):
        runner.register_message(WORKER_REPORT, _on_worker_report)
        runner.register_message(WORKER_READY, _on_worker_ready)
    if isinstance(runner, WorkerRunner):
        _take_segment(runner)
        HEALTH.worker = str(SCHEDULE.segment)
        JOURNEYS.rng.seed(f"{SETTINGS.seed}:{SCHEDULE.segment}")
        runner.register_message(SCHEDULE_MESSAGE, _on_schedule)
        gevent.spawn(_report_forever, runner)
    if runner is not None and not isinstance(runner, MasterRunner):
        gevent.spawn(_watch_generator, runner)  # a master sends no load: it has no health to watch
        _control.stats_merge = Events()
        setup_distributed_stats_event_listeners(_control.stats_merge, environment.stats)
        gevent.spawn(_feed_forever)
    if isinstance(runner, WorkerRunner):
        LOG.open(RUN_DIR.shard(HEALTH.worker))  # same host: the run directory the harness gave
        return
    LOG.open()
    if TOPOLOGY is None:
        return  # no stack: no exporter port to use, and no chaos to run
    if environment.web_ui is not None:
        add_live_tab(environment.web_ui, TOPOLOGY.endpoint("live").url)
    registry = CollectorRegistry()
    _control.collector = LoadCollector(environment, LOAD, LOG, GENERATORS)
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
        _warn(segment_refusal(index, WORKERS))
        runner.quit()
        raise SystemExit(2)
    SCHEDULE.segment, SCHEDULE.segments = index, WORKERS


def _on_schedule(msg: Any, **_: Any) -> None:
    SCHEDULE.begin(float(msg.data["start"]))


def _on_worker_ready(environment: Environment, msg: Any, **_: Any) -> None:
    if not SCHEDULE.worker_ready(str(msg.data["id"]), WORKERS):
        return
    start = _schedule_start(START_ALLOWANCE_S)
    SCHEDULE.begin(start)
    assert environment.runner is not None
    environment.runner.send_message(SCHEDULE_MESSAGE, {"start": start})
    _start_timeline(start)


def _merge_shards(runner: MasterRunner) -> None:
    """The workers' shards into ``requests.jsonl``, once each closed its own (or SHARD_WAIT_S
    passed: a worker lost mid-run leaves its shard as far as it was written)."""
    # Locust fires quitting before it tells the workers to quit when the master is stopped
    # (a signal, a lost worker): told now, they close their shards instead of running on.
    for client in runner.clients.all:
        with contextlib.suppress(RPCSendError):  # one already gone: nothing to tell it
            runner.server.send_to_client(Message("quit", None, client.id))
    shards = [RUN_DIR.shard(str(i)) for i in range(WORKERS)]
    open_ = wait_for_shards(
        shards, wait_s=SHARD_WAIT_S, sleep=lambda s: SHARDS.receive(runner, s), clock=time.time
    )
    SHARDS.received.abandon()  # a shard sent but not whole: kept apart, named, not merged cut short
    if open_:
        named = ", ".join(map(str, open_))
        _warn(f"worker shards not closed after {SHARD_WAIT_S:g}s, merged as far as written: {named}")
    try:
        LOG.take_shards(RUN_DIR.shard_files())
    except ConfigError as exc:
        _warn(f"the workers' records were not merged: {exc}")


def _on_worker_report(msg: Any, **_: Any) -> None:
    LOG.take_worker_report(msg.data)
    GENERATORS.take_worker_rows(msg.data["generator"], msg.data["send_lag"], str(msg.data["worker"]))


def _report_to_master(runner: WorkerRunner) -> None:
    if SCHEDULE.claimed and not SCHEDULE.generating and not any(LOG.in_flight.values()):
        # Through its schedule with every journey done: the test's last sample goes with the
        # report that lets the master stop, so it is in before the master quits.
        _stop_sampling()
    report = LOG.worker_report(generating=SCHEDULE.generating, worker_id=runner.client_id)
    samples = [sample.to_json() for sample in _unsent]
    _unsent.clear()
    health = {"generator": samples, "send_lag": HEALTH.send_lag.snapshot(), "worker": HEALTH.worker}
    runner.send_message(WORKER_REPORT, {**report, **health})


def _watch_generator(runner: Runner) -> None:
    """How late a timer set every TICK_S fires (the hub was busy or blocked that long), and a
    sample of this generator's health every SAMPLE_S while the test runs."""
    last_sample = time.monotonic()
    while True:
        running = runner.state in (STATE_SPAWNING, STATE_RUNNING)
        before = time.monotonic()
        gevent.sleep(TICK_S)
        now = time.monotonic()
        if not running:  # between tests: no window to count it in (the next starts afresh)
            last_sample = now
            continue
        HEALTH.on_timer(max(0.0, now - before - TICK_S))
        if now - last_sample >= SAMPLE_S and not HEALTH.stopped:
            last_sample = now
            _take_sample(stopped=False)


def _stop_sampling() -> None:
    """The test's last sample, once."""
    if not HEALTH.stopped:
        _take_sample(stopped=True)


def _take_sample(*, stopped: bool) -> None:
    """The window since the last sample: to the master with the next report (a worker), or
    into the run directory (the single process)."""
    now = time.time()
    due = SCHEDULE.due(LOAD, now)
    sample = HEALTH.sample(now=now, reading=CpuReading.now(), due=due, stopped=stopped)
    if SETTINGS.is_worker:
        _unsent.append(sample)
    else:
        GENERATORS.add([sample], HEALTH.send_lag.snapshot(), HEALTH.worker)


def _report_forever(runner: WorkerRunner) -> None:
    while True:
        gevent.sleep(1.0)
        _report_to_master(runner)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    SCHEDULE.reset()
    HEALTH.reset(reading=CpuReading.now(), now=time.time())
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
    """``DOORBUSTER_START_AT`` if set, else a start ``after_s`` from now."""
    return schedule_start(after_s, start_at=SETTINGS.start_at, now=time.time())


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
        record_path=RUN_DIR.chaos,
        lease=FaultLease(default_state_dir(), owner=f"locust run of {SCENARIO.name}"),
    )
    _control.greenlet = gevent.spawn(_control.timeline.run, gevent.sleep, lambda: _control.stopped, t0=at)


def _stop_timeline() -> None:
    _control.stopped = True
    if _control.greenlet is not None:
        _control.greenlet.join(timeout=10)
    if _control.timeline is not None:
        _control.timeline.stop()  # whatever is still applied, even if the greenlet died


@events.test_stopping.add_listener
def _on_test_stopping(environment: Environment, **_: Any) -> None:
    """The generator's last sample if it was stopped before it was through, sent at once: a
    worker that reports after its users have stopped may find the master gone."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        return
    _stop_sampling()
    _feed_stats()
    if isinstance(runner, WorkerRunner):
        _report_to_master(runner)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    _feed_stats()  # the users' last requests, before a worker's final stats report
    LOG.flush()  # a worker's last records are in its shard before it tells the master
    if isinstance(environment.runner, WorkerRunner):
        _report_to_master(environment.runner)
        return
    _stop_timeline()
    SCHEDULE.reset()  # the shape's next test (web UI) waits for a new start, not this one's


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    _feed_stats()  # before Locust prints its summary and decides its exit code from the failures
    if isinstance(environment.runner, WorkerRunner):
        _report_to_master(environment.runner)
        LOG.close()  # the shard renamed closed: the master merges it, sent to it if not shared
        if SETTINGS.own_run_dir:
            shard, chunk_bytes = RUN_DIR.shard(HEALTH.worker), SETTINGS.shard_chunk_bytes
            SHARDS.send(environment.runner, shard, HEALTH.worker, chunk_bytes=chunk_bytes)
        return
    _stop_timeline()
    if isinstance(environment.runner, MasterRunner):
        _merge_shards(environment.runner)
    LOG.close()
    GENERATORS.close()
