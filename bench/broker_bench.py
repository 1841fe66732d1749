"""Each broker on this machine: publish and consume throughput, end-to-end latency, through
Toxiproxy and direct, side by side in one run.

    .venv/bin/python bench/broker_bench.py                    # every broker
    .venv/bin/python bench/broker_bench.py --brokers kafka sqs --messages 500

For each broker it starts the real server (as ``doorbuster up`` would, ports from 29000) and
a Toxiproxy server (API 29474) with the ``async-broker`` proxy, and runs through the adapter
the async lane uses, once through the proxy and once straight to the broker:

* publish: ``--messages`` messages one after another, each waited for until the broker
  confirmed it (what the relay does): messages/s;
* consume: the same messages read back by one consumer, ``prefetch`` 32, each acknowledged:
  messages/s;
* end-to-end: a consumer running while messages are published at ``--rate`` per second;
  the time from publish to handler, p50 and p99.

Redis Pub/Sub keeps nothing, so its "consume" is measured with the consumer listening while
the messages are published.  Every loop is bounded in count and time; all traffic is loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets_check import Target, report

from harness.analysis.estimates import percentile
from harness.binaries import find_binary
from harness.faults.chaos import Chaos
from harness.processes import stop_group
from harness.stack.state import StateDir
from harness.stack.supervisor import command_for
from model.settings import BROKERS, PortSettings, StackSettings
from model.settings import Broker as BrokerName
from model.topology import Topology
from targets.brokers import make_broker
from targets.brokers.interface import Broker, Delivery, Message

PREFETCH = 32
LIMIT_S = 120.0  # no single measurement runs longer


def _wait_port(port: int, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {timeout_s}s")


def _start(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=cwd)  # fmt: skip


def _message(i: int, run: str, key: str | None = None) -> Message:
    body = json.dumps({"order_id": f"{run}-{i}", "sent": time.time()}).encode()
    return Message(message_id=f"{run}-{i}", routing_key=key or f"bench.{run}", body=body,
                   headers={"ordering_key": f"c{i % 64}"})  # fmt: skip


async def _connected(name: str, url: str) -> Broker:
    broker = make_broker(name, url)
    await broker.connect()
    return broker


async def measure(name: str, url: str, messages: int, rate: float, run: str) -> dict[str, Any]:
    producer, consumer = await _connected(name, url), await _connected(name, url)
    queue, key = f"bench.q-{run}", f"bench.{run}"
    await producer.ensure_queues({queue: (key,)})
    got: list[float] = []
    done = asyncio.Event()
    want = messages

    async def handler(delivery: Delivery) -> None:
        got.append(time.time() - json.loads(delivery.message.body)["sent"])
        await delivery.ack()
        if len(got) >= want:
            done.set()

    result: dict[str, Any] = {}
    listening_first = name == "redis-pubsub"  # nothing is kept for a consumer that comes later
    if listening_first:
        await consumer.consume(queue, (key,), PREFETCH, handler)
        await asyncio.sleep(0.5)
    started = time.perf_counter()
    for i in range(messages):
        await producer.publish(_message(i, run), timeout_s=10)
        if time.perf_counter() - started > LIMIT_S:
            want = i + 1
            break
    result["publish_per_s"] = want / (time.perf_counter() - started)
    started = time.perf_counter()
    if not listening_first:
        await consumer.consume(queue, (key,), PREFETCH, handler)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), LIMIT_S)
    result["consume_per_s"] = len(got) / (time.perf_counter() - started) if not listening_first else None
    result["consumed"] = f"{len(got)}/{want}"
    result["consumed_share"] = len(got) / want
    await consumer.close()

    # End to end, at a steady rate, with the consumer already listening.
    e2e_queue, e2e_key = f"bench.e2e-{run}", f"bench.e2e{run}"
    latencies: list[float] = []
    arrived = asyncio.Event()
    count = min(messages, int(rate * 10))

    async def timed(delivery: Delivery) -> None:
        latencies.append(time.time() - json.loads(delivery.message.body)["sent"])
        await delivery.ack()
        if len(latencies) >= count:
            arrived.set()

    listener = await _connected(name, url)
    await producer.ensure_queues({e2e_queue: (e2e_key,)})
    await listener.consume(e2e_queue, (e2e_key,), PREFETCH, timed)
    await asyncio.sleep(1.0)
    start = time.perf_counter()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await producer.publish(_message(i, run, e2e_key), timeout_s=10)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(arrived.wait(), 30)
    result["e2e_p50_ms"] = percentile(latencies, 0.50) * 1000
    result["e2e_p99_ms"] = percentile(latencies, 0.99) * 1000
    result["e2e_received"] = f"{len(latencies)}/{count}"
    result["e2e_share"] = len(latencies) / count
    await listener.close()
    await producer.close()
    return result


def bench_broker(name: BrokerName, messages: int, rate: float, work: Path) -> dict[str, dict[str, Any]]:
    settings = StackSettings(broker=name, ports=PortSettings(base=29000, toxiproxy_api=29474))
    topology = Topology.from_settings(settings)
    state = StateDir(work / name)
    state.prepare()
    toxiproxy = _start(
        [str(find_binary("toxiproxy-server")), "-host", "127.0.0.1", "-port", "29474"],
        {}, state.root / "toxiproxy.log", state.root,
    )  # fmt: skip
    cmd, env = command_for(topology.process("broker"), topology, state)
    broker = _start(cmd, env, state.root / "broker.log", state.root)
    try:
        _wait_port(29474, 30)
        Chaos(topology).ensure_proxies()
        _wait_port(topology.ports["broker-direct" if name == "kafka" else "broker"], 120)
        _wait_port(topology.ports["broker"], 120)
        time.sleep(2)  # listening is not quite serving yet (Kafka's controller, RabbitMQ's boot)
        # A JVM broker (Kafka, ElasticMQ) is slow until its code is compiled: a first round,
        # not recorded, so that the order of the two recorded ones does not decide the ratio.
        asyncio.run(
            measure(
                name,
                topology.broker_url(direct=True),
                max(50, messages // 4),
                rate,
                f"warm{int(time.time())}",
            )
        )
        out = {}
        for how, direct in (("direct", True), ("proxied", False)):
            out[how] = asyncio.run(
                measure(name, topology.broker_url(direct=direct), messages, rate, f"{how}{int(time.time())}")
            )
        return out
    finally:
        stop_group(broker)
        stop_group(toxiproxy)
        if name == "rabbitmq":
            subprocess.run(["epmd", "-kill"], capture_output=True)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", nargs="+", choices=BROKERS, default=list(BROKERS))
    parser.add_argument("--messages", type=int, default=1000, help="messages per measurement (at most 20000)")
    parser.add_argument("--rate", type=float, default=100.0, help="end-to-end publish rate, messages/s")
    args = parser.parse_args()
    messages = max(10, min(args.messages, 20_000))
    work = Path(tempfile.mkdtemp(prefix="doorbuster-broker-bench-"))
    results = {}
    for name in args.brokers:
        print(f"{name} ...", flush=True)
        results[name] = bench_broker(name, messages, args.rate, work)
    print(f"\n{messages} messages per measurement; end-to-end at {args.rate:g}/s; prefetch {PREFETCH}\n")
    print(f"{'broker':<14} {'path':<8} {'publish/s':>10} {'consume/s':>10} {'e2e p50':>9} {'e2e p99':>9}  "
          f"{'proxied/direct: publish/s':>25} {'e2e p50':>8}")  # fmt: skip
    for name, paths in results.items():
        for how in ("direct", "proxied"):
            r, d = paths[how], paths["direct"]
            ratios = (f"{r['publish_per_s'] / d['publish_per_s']:>25.2f} {r['e2e_p50_ms'] / d['e2e_p50_ms']:>8.2f}"
                      if how == "proxied" else f"{'':>25} {'':>8}")  # fmt: skip
            print(f"{name:<14} {how:<8} {r['publish_per_s']:>10.0f} {_fmt(r['consume_per_s'], '>10.0f'):>10} "
                  f"{r['e2e_p50_ms']:>7.1f}ms {r['e2e_p99_ms']:>7.1f}ms  {ratios}"
                  f"   (consumed {r['consumed']}, e2e {r['e2e_received']})")  # fmt: skip
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n(results in {work / 'results.json'})")
    return report(broker_targets(results))


def broker_targets(results: dict[str, dict[str, dict[str, Any]]]) -> list[Target]:
    """What the lane needs of a broker: every message through (with no fault, Pub/Sub's
    listening consumer too), a relay that publishes ten times the demo's peak of 10 orders/s,
    and a hop far shorter than the checkout chain's 1.85 s."""
    targets = []
    for name, paths in results.items():
        for how, r in paths.items():
            targets.append(Target(f"{name} {how}: share of messages consumed", r["consumed_share"], ">=", 1))
            targets.append(Target(f"{name} {how}: share of messages end to end", r["e2e_share"], ">=", 1))
            targets.append(Target(f"{name} {how}: publish", r["publish_per_s"], ">=", 100, "/s"))
            targets.append(Target(f"{name} {how}: end-to-end p99", r["e2e_p99_ms"], "<", 100, " ms"))
    return targets


if __name__ == "__main__":
    sys.exit(main())
