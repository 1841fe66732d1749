"""Everything listens on loopback; the Toxiproxy API never beyond it."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess

from tests.integration.conftest import RunningStack


def _descendants(pids: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        pid, ppid = (int(x) for x in line.split())
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def test_every_listener_of_the_stack_is_on_loopback(stack: RunningStack) -> None:
    record = json.loads((stack.state_dir / "supervisor.json").read_text())
    pids = _descendants({int(record["pid"])} | {int(p["pid"]) for p in record["processes"].values()})
    ss = shutil.which("ss")
    assert ss, "ss (iproute2) lists listening sockets"
    out = subprocess.run([ss, "-Htlnp"], capture_output=True, text=True, check=True).stdout
    listeners = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if not owners & pids:
            continue
        local = line.split()[3]
        host = local.rsplit(":", 1)[0].strip("[]").split("%")[0]
        listeners.append((host, local, owners))
    assert len(listeners) >= len(stack.topology.processes), listeners  # every process listens somewhere
    exposed = [
        (local, owners) for host, local, owners in listeners if not ipaddress.ip_address(host).is_loopback
    ]
    assert exposed == []
    toxiproxy_api = f"127.0.0.1:{stack.topology.toxiproxy.port}"
    assert any(local == toxiproxy_api for _, local, _ in listeners)
