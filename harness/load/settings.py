"""What the load generator reads from its environment, read once into one frozen record.

``doorbuster run`` (:func:`harness.load.locust_group.locust_env`) or the user sets these; the
locustfile reads them with :func:`read_settings` when Locust imports it:

- ``DOORBUSTER_SCENARIO``: a shipped scenario's name or a file (default ``black-friday``);
- ``DOORBUSTER_STACK_FILE``: the stack's topology as JSON, for a stack run by other means
  (compose); else the running stack of ``DOORBUSTER_STATE_DIR``;
- ``DOORBUSTER_TARGETS``: ``{"sync": "http://host:port", ...}`` instead of the stack's order
  services, hosts off loopback only when named in ``DOORBUSTER_ALLOW_HOSTS`` (comma-separated);
- ``DOORBUSTER_RUN_DIR``: where the request log goes (default ``runs/<time>-<scenario>-locust``);
- ``DOORBUSTER_WORKERS``: how many generators share the arrival schedule (default 1);
- ``DOORBUSTER_START_AT``: when the arrival schedule starts, as a Unix time (optional).

A setting that can not be used is refused with :class:`GeneratorRefused`, whose message is
what the locustfile prints after ``doorbuster:`` before it exits.

    >>> parse_targets('{"sync": "http://127.0.0.1:8001"}', allowed_hosts="")
    {'sync': ('127.0.0.1', 8001)}
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness.binaries import PROJECT_ROOT
from harness.config.files import read_text
from harness.config.scenarios import load_scenario
from harness.config.systems import default_system
from harness.load.access_log import LogEntry, read_access_log
from harness.load.shard_transfer import CHUNK_BYTES
from harness.records.run_dir import REQUESTS_FILE
from harness.stack.control import Stack
from harness.stack.state import StateDir, default_state_dir
from model.errors import ConfigError, DoorbusterError
from model.scenario import LoadSpec, Scenario
from model.system import LaneSpec, expand
from model.topology import Topology, is_loopback

__all__ = [
    "GeneratorRefused",
    "GeneratorSettings",
    "LaneRequest",
    "parse_start_at",
    "parse_targets",
    "read_settings",
]


class GeneratorRefused(ConfigError):
    """A setting the load generator can not run with; the message says which and why."""


@dataclass(frozen=True, kw_only=True)
class LaneRequest:
    """A lane's request as its system file defines it, and the path it goes to on the target."""

    spec: LaneSpec
    path: str


@dataclass(frozen=True, kw_only=True)
class GeneratorSettings:
    """Everything one generator process runs with, read once at start."""

    scenario: Scenario
    topology: Topology | None  # None: no stack (load to DOORBUSTER_TARGETS only, no chaos)
    targets: Mapping[str, tuple[str, int]]  # lane -> (host, port)
    requests: Mapping[str, LaneRequest]
    run_dir: Path
    workers: int  # generators sharing the schedule (at least 1)
    start_at: float | None  # the schedule's start set from outside, as a Unix time
    is_worker: bool  # a Locust worker: it writes its own shard of the records
    # A worker whose run directory is its own, not the master's (another host): after the
    # load it sends its shard to the master (``DOORBUSTER_OWN_RUN_DIR=1``).
    own_run_dir: bool = False
    # The size of the chunks it sends its shard in (``DOORBUSTER_SHARD_CHUNK_BYTES``; tests
    # make it small to send a short run's shard in many chunks).
    shard_chunk_bytes: int = CHUNK_BYTES
    # The run's seed (``doorbuster run`` always sets one; a plain ``locust -f`` of a scenario
    # without one draws from 0, so that its workers still share one Poisson schedule).
    seed: int = 0
    replay: tuple[LogEntry, ...] = ()  # the access log's entries, for ``arrivals: replay``

    @property
    def load(self) -> LoadSpec:
        return self.scenario.load


def parse_targets(raw: str, *, allowed_hosts: str) -> dict[str, tuple[str, int]]:
    """``DOORBUSTER_TARGETS`` as ``lane -> (host, port)``; a host off loopback only when it is
    in ``allowed_hosts`` (comma-separated)."""
    allowed = {h.strip() for h in allowed_hosts.split(",") if h.strip()}
    try:
        urls = {str(k): urlsplit(str(v)) for k, v in json.loads(raw).items()}
        targets = {lane: (str(u.hostname), int(u.port or 80)) for lane, u in urls.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise GeneratorRefused(f"DOORBUSTER_TARGETS: expected {{lane: url}} JSON ({exc})") from None
    for lane, (host, _) in targets.items():
        if not is_loopback(host) and host not in allowed:
            raise GeneratorRefused(
                f"refusing to send load to {host} ({lane}): not a loopback address; "
                "name it in DOORBUSTER_ALLOW_HOSTS to allow it"
            )
    return targets


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """``environ[name]`` as a whole number of at least 1, ``default`` when unset."""
    text = environ.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise GeneratorRefused(f"{name}={text!r}: expected a whole number of at least 1")
    return int(text)


def parse_start_at(text: str, *, now: float) -> float | None:
    """``DOORBUSTER_START_AT`` as a Unix time within the hour of ``now``; None when unset."""
    if not text:
        return None
    try:
        start = float(text)
    except ValueError:
        start = math.nan
    if not math.isfinite(start) or abs(start - now) > 3600:
        raise GeneratorRefused(f"DOORBUSTER_START_AT={text!r}: expected a Unix time within the hour")
    return start


def _targets(topology: Topology | None, environ: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """Where each lane's orders go: the stack's order services, or ``DOORBUSTER_TARGETS``."""
    raw = environ.get("DOORBUSTER_TARGETS")
    if raw:
        return parse_targets(raw, allowed_hosts=environ.get("DOORBUSTER_ALLOW_HOSTS", ""))
    if topology is None:
        raise GeneratorRefused("no stack is running; start it with: doorbuster up")
    return {
        lane: (topology.order_service(lane).host, topology.order_service(lane).port)
        for lane in topology.lanes
    }


def _topology(scenario: Scenario, environ: Mapping[str, str], is_worker: bool) -> Topology | None:
    try:
        stack_file = environ.get("DOORBUSTER_STACK_FILE")  # a stack run by other means (compose)
        if stack_file:
            return Topology.from_json(read_text(Path(stack_file)))
        return Stack(StateDir(default_state_dir())).running_topology()
    except (DoorbusterError, OSError, ValueError) as exc:
        # A worker only sends load (the master runs the chaos), so targets are all it needs.
        needs_stack = scenario.chaos and not is_worker
        if needs_stack or not environ.get("DOORBUSTER_TARGETS"):
            raise GeneratorRefused(f"{type(exc).__name__}: {exc}") from None
    return None


def _lane_requests(scenario: Scenario, topology: Topology | None) -> dict[str, LaneRequest]:
    """Each lane's request (the system file's) and the path it goes to on its target."""
    try:
        system = scenario.stack.system or default_system()
    except DoorbusterError as exc:
        raise GeneratorRefused(f"{type(exc).__name__}: {exc}") from None
    found: dict[str, LaneRequest] = {}
    for lane in scenario.load.lanes:
        spec = system.lanes.get(lane)  # type: ignore[call-overload]
        if spec is None:
            raise GeneratorRefused(f"system {system.name} has no {lane} lane")
        # Only the path is used: the target (the stack's, or DOORBUSTER_TARGETS) gives the host.
        url = urlsplit(expand(spec.url, topology.address_values() if topology else system.url_stand_ins()))
        found[lane] = LaneRequest(spec=spec, path=(url.path or "/") + (f"?{url.query}" if url.query else ""))
    return found


def read_settings(
    environ: Mapping[str, str],
    argv: Sequence[str],
    *,
    warn: Callable[[str], None],
    now: float | None = None,
) -> GeneratorSettings:
    """The generator's settings from ``environ`` and its command line ``argv``.

    Creates the run directory; refuses one that holds a request log already (unless this is
    a worker, which writes none), since appending would mix two runs' records in one log and
    the report would read both.  ``warn`` gets what is worth saying but not refusing.
    """
    now = time.time() if now is None else now
    is_worker = "--worker" in argv
    try:
        scenario, _ = load_scenario(environ.get("DOORBUSTER_SCENARIO", "black-friday"))
    except DoorbusterError as exc:
        raise GeneratorRefused(f"{type(exc).__name__}: {exc}") from None
    topology = _topology(scenario, environ, is_worker)
    if topology is not None:
        running = topology.settings.model_copy(update={"ports": scenario.stack.ports})
        if running != scenario.stack and "DOORBUSTER_RUN_DIR" not in environ:
            warn(
                f"warning: the running stack's settings are not scenario {scenario.name}'s; "
                f"restart it with: doorbuster down && doorbuster up --scenario {scenario.name}"
            )
    targets = _targets(topology, environ)
    missing = [lane for lane in scenario.load.lanes if lane not in targets]
    if missing:
        raise GeneratorRefused(f"DOORBUSTER_TARGETS has no URL for lane(s) {missing}")
    run_dir = Path(
        environ.get("DOORBUSTER_RUN_DIR")
        or PROJECT_ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario.name}-locust"
    )
    if not is_worker and (run_dir / REQUESTS_FILE).exists():
        raise GeneratorRefused(
            f"{run_dir / REQUESTS_FILE} already exists (an earlier run's records); "
            "set DOORBUSTER_RUN_DIR to a new directory, or remove that file"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, int(environ.get("DOORBUSTER_WORKERS", "1")))
    start_at = parse_start_at(environ.get("DOORBUSTER_START_AT", ""), now=now)
    replay = scenario.load.replay
    try:
        entries = tuple(read_access_log(Path(replay.file), replay.format)) if replay else ()
    except DoorbusterError as exc:
        raise GeneratorRefused(f"{type(exc).__name__}: {exc}") from None
    return GeneratorSettings(
        seed=scenario.seed or 0,
        replay=entries,
        scenario=scenario,
        topology=topology,
        targets=targets,
        requests=_lane_requests(scenario, topology),
        run_dir=run_dir,
        workers=workers,
        start_at=start_at,
        is_worker=is_worker,
        own_run_dir=is_worker and environ.get("DOORBUSTER_OWN_RUN_DIR", "") not in ("", "0"),
        shard_chunk_bytes=_positive_int(environ, "DOORBUSTER_SHARD_CHUNK_BYTES", CHUNK_BYTES),
    )
