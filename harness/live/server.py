"""The live view's process: ``python -m harness.live.server --state-dir DIR`` serves the page
(:mod:`harness.live.app`) of a running stack, from its Prometheus, its faults (the CLI's own path)
and the status its runs publish (:mod:`harness.run.status`), on the stack's ``live`` port."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.faults.actions import add_held, remove_faults
from harness.faults.chaos import Chaos
from harness.faults.leases import fault_owners, stack_lease
from harness.live.app import LiveView, build_live_app, new_token
from harness.metrics.prometheus import PrometheusClient
from harness.processes import pid_alive
from harness.run.status import RunStatus, read_run_status
from harness.stack.state import StateDir
from model.errors import DoorbusterError
from model.faults import FaultSpec
from model.topology import Topology, is_loopback

__all__ = ["StackFaults", "main", "stack_view"]

log = logging.getLogger("doorbuster.live")

_APPLIED_BY = "doorbuster live view"


class StackFaults:
    """:class:`harness.live.app.FaultDesk` on the running stack: a fault added from the page is
    held by the stack's lease (as ``doorbuster toxic add`` without ``--for``)."""

    def __init__(self, state: StateDir, topology: Topology) -> None:
        self.state = state
        self.topology = topology

    def _chaos(self) -> Chaos:
        return Chaos(self.topology, timeout_s=2.0)

    def active(self) -> list[dict[str, Any]]:
        return [owned.as_json() for owned in fault_owners(self.state.root, self._chaos().active())]

    def add(self, spec: FaultSpec) -> list[dict[str, Any]]:
        record = self.state.read_supervisor()
        lease = stack_lease(self.state.root, None if record is None else int(record["pid"]))
        return [fault.as_json() for fault in add_held(self._chaos(), spec, lease, by=_APPLIED_BY)]

    def remove(self, dependency: str, lanes: tuple[str, ...], name: str | None) -> int:
        return remove_faults(self.state.root, self.topology, dependency, lanes, name)


def stack_view(state_root: Path, token: str) -> LiveView:
    state = StateDir(state_root)
    topology = Topology.from_json(state.stack_file.read_text())
    return LiveView(
        topology=topology,
        token=token,
        series=PrometheusClient(topology.prometheus.url, timeout_s=5.0),
        faults=StackFaults(state, topology),
        run_status=lambda: _current(read_run_status(state.root)),
    )


def _current(status: RunStatus | None) -> RunStatus | None:
    """A run killed before it could say so (kill -9) is shown as ended, not as still running."""
    if status is None or status.stage in ("done", "ended") or pid_alive(status.pid):
        return status
    return replace(status, stage="ended", faults=())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.live.server")
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s live %(levelname)s %(message)s")
    try:
        view = stack_view(Path(args.state_dir), new_token())
    except (OSError, DoorbusterError) as exc:
        log.error("%s", exc)
        return 2
    endpoint = view.topology.endpoint("live")
    if not is_loopback(endpoint.host):
        log.error("the live view binds loopback only, not %s", endpoint.host)
        return 2
    if not (view.uplot_dir / "uPlot.iife.min.js").is_file():
        log.warning("%s has no uPlot: the page's charts will not draw; run `make setup`", view.uplot_dir)
    log.info("serving %s", endpoint.url)
    web.run_app(build_live_app(view), host=endpoint.host, port=endpoint.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
