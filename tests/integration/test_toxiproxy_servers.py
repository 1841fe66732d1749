"""Two real Toxiproxy servers in one process, driven from two threads at once, never cross.

toxiproxy-python kept the server's address on a class that every caller rewrote before each
call, so one thread's calls could land on the other thread's server.  Each server here has
its own topology (its own proxy ports); each thread makes, faults and lists its own proxies
over and over while the other does the same.  And an error Toxiproxy answers with (a proxy
port another program holds) reaches the user as a message, not a traceback.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.binaries import find_binary
from harness.faults.chaos import Chaos
from harness.processes import stop_group
from model.errors import ToxiproxyUnavailable
from model.faults import FaultSpec
from model.settings import PortSettings, StackSettings
from model.topology import Topology

ROUNDS = 15
DEADLINE_S = 120.0


def _start_toxiproxy(topology: Topology, log: Path) -> subprocess.Popen[bytes]:
    endpoint = topology.toxiproxy
    with log.open("ab") as out:
        server = subprocess.Popen(
            [str(find_binary("toxiproxy-server")), "-host", endpoint.host, "-port", str(endpoint.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"{endpoint.url}/version", timeout=1).ok:
                return server
        except requests.RequestException:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_group(server)
            raise RuntimeError(f"toxiproxy-server on {endpoint.address} did not start: {log.read_text()}")
        time.sleep(0.05)


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Topology, Topology]]:
    topologies = (
        Topology.from_settings(StackSettings(ports=PortSettings(base=22000, toxiproxy_api=22474))),
        Topology.from_settings(StackSettings(ports=PortSettings(base=22500, toxiproxy_api=22974))),
    )
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for i, topology in enumerate(topologies):
            servers.append(_start_toxiproxy(topology, tmp_path / f"toxiproxy-{i}.log"))
        yield topologies
    finally:
        for server in servers:
            stop_group(server, timeout_s=10)


def _exercise(chaos: Chaos, tag: str, seen: list[dict[str, Any]]) -> None:
    """Make the proxies, add a toxic of this thread's, take the proxy down, look, bring it
    back; ROUNDS times.  (Only Toxiproxy calls: no service answers faults here.)"""
    for round_ in range(ROUNDS):
        chaos.ensure_proxies()
        chaos.add(
            FaultSpec(
                dependency="payment",
                type="latency",
                lanes=("sync",),
                attributes={"latency": 5},
                name=f"only_{tag}_{round_}",
            )
        )
        chaos.set_enabled("payment", ("sync",), enabled=False)
        seen.append(chaos.proxies())
        chaos.set_enabled("payment", ("sync",), enabled=True)


def test_two_servers_driven_from_two_threads_each_see_only_their_own(
    two_servers: tuple[Topology, Topology],
) -> None:
    tags = ("a", "b")
    seen: dict[str, list[dict[str, Any]]] = {tag: [] for tag in tags}
    errors: dict[str, BaseException] = {}

    def worker(topology: Topology, tag: str) -> None:
        try:
            _exercise(Chaos(topology), tag, seen[tag])
        except BaseException as exc:
            errors[tag] = exc

    threads = [
        threading.Thread(target=worker, args=(topology, tag), daemon=True)
        for topology, tag in zip(two_servers, tags, strict=True)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE_S
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), f"not done after {DEADLINE_S:g}s"
    assert not errors, errors

    for topology, tag in zip(two_servers, tags, strict=True):
        own = {p.name: p.listen for p in topology.proxies}
        assert len(seen[tag]) == ROUNDS
        for proxies in seen[tag]:
            listens = {name: data["listen"] for name, data in proxies.items()}
            assert listens == own, f"{tag} saw proxies of the other server"
            toxics = [t["name"] for t in proxies["sync-payment"]["toxics"]]
            assert toxics, f"{tag} saw no toxic of its own"
            assert all(name.startswith(f"only_{tag}_") for name in toxics), f"{tag} saw toxics {toxics}"
            assert proxies["sync-payment"]["enabled"] is False
        # And each server, asked directly, holds only its own proxies and toxics.
        final = requests.get(f"{topology.toxiproxy.url}/proxies", timeout=5).json()
        assert {name: data["listen"] for name, data in final.items()} == own
        toxics = sorted(t["name"] for t in final["sync-payment"]["toxics"])
        assert toxics == sorted(f"only_{tag}_{i}" for i in range(ROUNDS))
        assert all(data["enabled"] for data in final.values())


def test_a_proxy_port_taken_by_another_program_is_named_not_a_traceback(tmp_path: Path) -> None:
    topology = Topology.from_settings(StackSettings(ports=PortSettings(base=22000, toxiproxy_api=22474)))
    taken = topology.proxies[0]
    server = _start_toxiproxy(topology, tmp_path / "toxiproxy.log")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
            other.bind((taken.listen_endpoint.host, taken.listen_endpoint.port))
            other.listen()
            # Toxiproxy answers 500; toxiproxy-python read it as a proxy and raised KeyError.
            with pytest.raises(ToxiproxyUnavailable) as raised:
                Chaos(topology).ensure_proxies()
        message = str(raised.value)
        assert topology.toxiproxy.address in message
        assert f"creating proxy {taken.name}" in message
        assert "address already in use" in message
    finally:
        stop_group(server, timeout_s=10)
