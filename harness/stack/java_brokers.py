"""The two brokers that run on Java: Apache Kafka (KRaft mode) and ElasticMQ (SQS).

Both come from Maven Central (``scripts/setup`` copies their jars into ``.tools/<name>/lib``)
and run as private servers: their own data under the state directory, every listener on
loopback, and their clients' traffic through the ``async-broker`` proxy like every other hop.

**Kafka** tells a client which address to use after the first contact (the advertised
listener), so it gets two client listeners: ``PROXIED`` on the broker port, which advertises
the Toxiproxy proxy (so every later connection crosses it too), and ``DIRECT`` on
``broker-direct``, which advertises itself (benchmarks measure the broker without the proxy;
the conformance suite runs without Toxiproxy).  A new data directory is formatted first
(``kafka-storage format``).  One node, replication factor 1: an acknowledged record is in the
broker's log (page cache, flushed by the OS), not on a second machine.

**ElasticMQ** keeps queue definitions in a file in the state directory and messages in memory,
so a restarted ElasticMQ has its queues but not their messages (AWS SQS keeps them).  Its SQL
message store is off on purpose: it serializes a message object that the queue goes on
changing, and under load (a message received while it is being stored) it fails with
``ConcurrentModificationException`` in ``DBMessage.from`` and the queue stops answering
``SendMessage`` for 20 s and more (seen in ``bench/broker_bench.py`` with 1.6.14; the current
source has the same code).  Its queue URLs name the proxy.
Its statistics endpoint (which would listen on every interface) is switched off.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from harness.binaries import find_binary, find_jars
from harness.stack.state import StateDir
from model.errors import StartFailed
from model.topology import BROKER, Topology

__all__ = ["elasticmq_command", "kafka_command"]

KAFKA_HEAP = "512m"
ELASTICMQ_HEAP = "384m"
KAFKA_PARTITIONS = 6


def _java(heap: str) -> list[str]:
    return [
        str(find_binary("java")),
        f"-Xms{heap}", f"-Xmx{heap}",
        "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
    ]  # fmt: skip


def kafka_properties(topology: Topology, data: str) -> str:
    host = topology.host
    proxied = topology.proxy("async", BROKER).listen
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{host}:{topology.ports['broker-controller']}",
        "listeners=" + ",".join([
            f"PROXIED://{host}:{topology.ports['broker']}",
            f"DIRECT://{host}:{topology.ports['broker-direct']}",
            f"CONTROLLER://{host}:{topology.ports['broker-controller']}",
        ]),
        f"advertised.listeners=PROXIED://{proxied},DIRECT://{host}:{topology.ports['broker-direct']}",
        "listener.security.protocol.map=PROXIED:PLAINTEXT,DIRECT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=DIRECT",
        "controller.listener.names=CONTROLLER",
        f"log.dirs={data}",
        f"num.partitions={KAFKA_PARTITIONS}",
        "auto.create.topics.enable=true",
        "offsets.topic.num.partitions=6",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "log.retention.hours=24",
        "",
    ])  # fmt: skip


_LOG4J = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.BrokerServer
logger.started.level = INFO
"""


def kafka_command(topology: Topology, state: StateDir) -> tuple[list[str], dict[str, str]]:
    home = state.root / "kafka"
    data = home / "data"
    data.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(kafka_properties(topology, str(data)))
    log4j = home / "log4j2.properties"
    log4j.write_text(_LOG4J)
    classpath = f"{find_jars('kafka')}/*"
    base = [*_java(KAFKA_HEAP), f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
    if not (data / "meta.properties").exists():
        _format_kafka(base, props, data)
    return [*base, "kafka.Kafka", str(props)], {}


def kafka_cluster_id() -> str:
    """A random cluster id made as Kafka's own ``Uuid.randomUuid`` makes one: 16 random bytes
    in URL-safe base64, but never starting with ``-``, which the format command would read as
    an option ("argument --cluster-id/-t: expected one argument": 1 start in 64 failed so)."""
    for _ in range(1000):
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster.startswith("-"):
            return cluster
    raise AssertionError("1000 random ids in a row started with '-'")


def _format_kafka(
    base: list[str], props: Path, data: Path, attempts: int = 2, timeout_s: float = 120
) -> None:
    """``kafka-storage format`` a new data directory; a failed try (once seen in CI, on a
    machine busy with the test suite) is cleared away and tried again once."""
    command = [*base, "kafka.tools.StorageTool", "format", "-t", kafka_cluster_id(), "-c", str(props)]
    output = ""
    for _ in range(attempts):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            output = f"no answer in {timeout_s:g} s"
        else:
            if done.returncode == 0:
                return
            output = f"exit {done.returncode}: {(done.stdout + done.stderr)[-1000:]}"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True, exist_ok=True)
    raise StartFailed(f"kafka-storage format failed {attempts} times; the last: {output}")


def elasticmq_config(topology: Topology, home: str) -> str:
    proxied = topology.proxy("async", BROKER).listen_endpoint
    return f"""include classpath("application.conf")

node-address {{
  protocol = "http"
  host = "{proxied.host}"
  port = {proxied.port}
  context-path = ""
}}
rest-sqs {{
  enabled = true
  bind-port = {topology.ports["broker"]}
  bind-hostname = "{topology.host}"
  sqs-limits = strict
}}
rest-stats {{
  enabled = false
  bind-port = {topology.ports["broker-direct"]}
  bind-hostname = "{topology.host}"
}}
generate-node-address = false
queues-storage {{
  enabled = true
  path = "{home}/queues.conf"
}}
# Messages stay in memory: the SQL store fails under load (doorbuster: harness/stack/java_brokers.py).
messages-storage {{
  enabled = false
}}
aws {{
  region = "elasticmq"
  accountId = "000000000000"
}}
"""


def elasticmq_command(topology: Topology, state: StateDir) -> tuple[list[str], dict[str, str]]:
    home = state.root / "elasticmq"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "elasticmq.conf"
    config.write_text(elasticmq_config(topology, str(home)))
    cmd = [
        *_java(ELASTICMQ_HEAP),
        f"-Dconfig.file={config}",
        "-cp", f"{find_jars('elasticmq')}/*",
        "org.elasticmq.server.Main",
    ]  # fmt: skip
    return cmd, {}
