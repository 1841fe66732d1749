"""Finding the real servers: on PATH, in the project's own bin, or where Debian puts them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from model.errors import MissingBinary

__all__ = ["PROJECT_BIN", "PROJECT_ROOT", "find_binary", "find_jars"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# ``scripts/setup`` installs Go-built binaries here (``GOBIN``), never system-wide.
PROJECT_BIN = PROJECT_ROOT / ".tools" / "bin"

# name -> (environment override, binary names to try, extra absolute places, how to get it)
_KNOWN: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "toxiproxy-server": (
        "DOORBUSTER_TOXIPROXY_SERVER",
        ("toxiproxy-server", "server"),
        (),
        "go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0 (scripts/setup does it)",
    ),
    "toxiproxy-cli": (
        "DOORBUSTER_TOXIPROXY_CLI",
        ("toxiproxy-cli", "cli"),
        (),
        "go install github.com/Shopify/toxiproxy/v2/cmd/cli@v2.12.0 (scripts/setup does it)",
    ),
    "doorbuster-httpfault": (
        "DOORBUSTER_HTTPFAULT",
        ("doorbuster-httpfault",),
        (),
        "go build in stage/httpfault into .tools/bin/doorbuster-httpfault (scripts/setup does it)",
    ),
    # Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user; the script behind it
    # runs the node as whoever calls it, with the data directories we choose.
    "rabbitmq-server": (
        "DOORBUSTER_RABBITMQ_SERVER",
        ("rabbitmq-server",),
        ("/usr/lib/rabbitmq/bin/rabbitmq-server",),
        "apt-get install rabbitmq-server (scripts/setup does it when run as root on Debian)",
    ),
    "redis-server": (
        "DOORBUSTER_REDIS_SERVER",
        ("redis-server",),
        (),
        "apt-get install redis-server (scripts/setup does it when run as root on Debian)",
    ),
    "java": (
        "DOORBUSTER_JAVA",
        ("java",),
        (),
        "apt-get install openjdk-17-jre-headless (Kafka and ElasticMQ run on Java 17)",
    ),
    "prometheus": (
        "DOORBUSTER_PROMETHEUS",
        ("prometheus",),
        (),
        "apt-get install prometheus (scripts/setup does it when run as root on Debian)",
    ),
}


def find_binary(name: str) -> Path:
    """The path of a server binary, or MissingBinary saying how to install it."""
    env, names, places, hint = _KNOWN[name]
    override = os.environ.get(env)
    if override:
        if Path(override).is_file() and os.access(override, os.X_OK):
            return Path(override)
        raise MissingBinary(f"{env}={override} is not an executable file")
    # The project's bin first: `go install` names the toxiproxy binaries `server` and `cli`,
    # names far too common to look for on PATH.
    for candidate in names:
        path = PROJECT_BIN / candidate
        if path.is_file() and os.access(path, os.X_OK):
            return path
    for place in places:
        if Path(place).is_file() and os.access(place, os.X_OK):
            return Path(place)
    found = shutil.which(names[0])
    if found:
        return Path(found)
    raise MissingBinary(f"{name} not found on PATH or in {PROJECT_BIN}; install it with: {hint}")


# Java servers: scripts/setup copies their jars from Maven Central into .tools/<name>/lib.
_JARS = {
    "kafka": ("kafka_2.13-", "scripts/brokers/kafka/pom.xml"),
    "elasticmq": ("elasticmq-server_2.13-", "scripts/brokers/elasticmq/pom.xml"),
}


def find_jars(name: str) -> Path:
    """The directory of a Java server's jars, or MissingBinary saying how to get them."""
    marker, pom = _JARS[name]
    lib = PROJECT_ROOT / ".tools" / name / "lib"
    if lib.is_dir() and any(p.name.startswith(marker) for p in lib.glob("*.jar")):
        return lib
    raise MissingBinary(
        f"the {name} server's jars are not in {lib}; run scripts/setup "
        f"(mvn -f {pom} dependency:copy-dependencies -DoutputDirectory={lib})"
    )
