"""``make test-lanes``: the suite in two lanes side by side, each in a network namespace of its own.

Most of an integration test is waiting (a stack starting, a fault held, a queue draining): run
one after another, the suite kept about a third of this machine's two cores busy.  Two pytest
processes side by side use the wait, and a namespace each (``unshare --net``, loopback only)
gives each its own ports, so a stack on 23000 in one lane never meets the other's.  Each lane
also has its own state home and temporary directory.

- **load**: the tests whose verdicts rest on timing under load (the claims, the sweep, the
  shootout, a user's own system, the starved generator ...), the longest ones, one at a time.
- **rest**: the unit tests, the docs and every other integration test.

Where a namespace can not be made (not root, no ``unshare``), the lanes run one after the
other in this network, as ``pytest`` alone would, and the runner says so.  Exit code: 0 when
both lanes passed, else the first failing lane's.

On two cores the lanes slow the system under test itself, and timing verdicts fail
(docs/development/index.md has the run): ``make test`` runs the suite in one process.

    python -m tests.lanes             # both lanes (what `make test-lanes` runs)
    python -m tests.lanes --lane load # one lane, in its namespace
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

__all__ = ["LANES", "Lane", "lane_arguments", "main", "module_seconds"]

ROOT = Path(__file__).resolve().parent.parent

# Each lane's tests; the load lane's are listed (those whose verdicts rest on timing under load),
# the rest lane is every other test.
LOAD_MODULES = (
    "tests/integration/test_sweep.py",
    "tests/integration/test_claims.py",
    "tests/integration/test_byo_system.py",
    "tests/integration/test_shootout.py",
    "tests/integration/test_ci_outputs.py",
    "tests/integration/test_generator_starved.py",
    "tests/integration/test_lost_worker.py",
    "tests/integration/test_retry_policies.py",
    "tests/integration/test_report_page.py",
    "tests/integration/test_live_view.py",
    "tests/integration/test_chaostoolkit.py",
)


@dataclass(frozen=True, kw_only=True)
class Lane:
    """One pytest process: its name and the paths (or ``--ignore``s) it is given."""

    name: str
    paths: tuple[str, ...] = ()
    ignores: tuple[str, ...] = ()
    nice: int = 0  # added to the lane's niceness: the lower, the more of the CPU it gets when both want it


# The rest lane yields the CPU to the load lane (nice 10: about a tenth of a core's share when
# both want one): a verdict there rests on a generator sending on time, and on two cores two
# stacks under load made the claims' generator late (a lane of the other's waits longer instead).
LANES = (
    Lane(name="load", paths=LOAD_MODULES),
    Lane(name="rest", ignores=LOAD_MODULES, nice=10),
)

# SIOCSIFFLAGS on "lo": a new network namespace's loopback starts down.
_SIOCSIFFLAGS = 0x8914
_IFF_UP_LOOPBACK_RUNNING = 0x1 | 0x8 | 0x40


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", _IFF_UP_LOOPBACK_RUNNING))


def lane_arguments(
    lane: Lane, *, basetemp: Path, junit: Path | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """pytest's command-line arguments for a lane."""
    args = ["-q", "-p", "no:cacheprovider", "--durations=10", f"--basetemp={basetemp}"]
    if junit is not None:
        args.append(f"--junitxml={junit}")
    args += [f"--ignore={path}" for path in lane.ignores]
    return [*args, *extra, *lane.paths]


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def _command(lane: Lane, *, isolated: bool, work: Path, extra: Sequence[str]) -> list[str]:
    network = "own" if isolated else "shared"
    inner = [
        sys.executable,
        "-m",
        "tests.lanes",
        "--lane",
        lane.name,
        "--work",
        str(work),
        "--in-lane",
        network,
    ]
    if extra:
        inner += ["--", *extra]
    return ["unshare", "--net", *inner] if isolated else inner


def _run_in_lane(lane: Lane, work: Path, extra: Sequence[str], *, isolated: bool) -> int:
    """Inside the lane's process: loopback up (in a namespace), then pytest."""
    if isolated:
        _loopback_up()
    if lane.nice:
        os.nice(lane.nice)
    home = work / lane.name
    (home / "state").mkdir(parents=True, exist_ok=True)
    os.environ["XDG_STATE_HOME"] = str(home / "state")
    os.environ.pop("DOORBUSTER_STATE_DIR", None)
    import pytest

    arguments = lane_arguments(lane, basetemp=home / "tmp", junit=work / f"{lane.name}.xml", extra=extra)
    return int(pytest.main(arguments))


def module_seconds(junit: Path) -> dict[str, float]:
    """Seconds each test module took, from a lane's JUnit XML (setup and teardown included)."""
    totals: dict[str, float] = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        module = case.get("classname", "")  # the module's dotted path (and class, for a method)
        totals[module] = totals.get(module, 0.0) + float(case.get("time", "0") or 0)
    return totals


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _both(lanes: Sequence[Lane], work: Path, extra: Sequence[str], *, isolated: bool) -> int:
    started = time.monotonic()
    logs = {lane.name: work / f"{lane.name}.log" for lane in lanes}
    running: dict[str, subprocess.Popen[bytes]] = {}
    for lane in lanes:
        with logs[lane.name].open("wb") as log:
            running[lane.name] = subprocess.Popen(
                _command(lane, isolated=isolated, work=work, extra=extra),
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        print(f"lane {lane.name}: started (log: {logs[lane.name]})", flush=True)
    codes: dict[str, int] = {}
    while running:
        for name, process in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            codes[name] = code
            del running[name]
            state = "passed" if code == 0 else f"FAILED (exit {code})"
            print(f"lane {name}: {state} after {_minutes(time.monotonic() - started)}", flush=True)
        time.sleep(1.0)
    for lane in lanes:
        print(f"\n======== lane {lane.name} ========", flush=True)
        sys.stdout.write(logs[lane.name].read_text(errors="replace")[-_TAIL_CHARS:])
        junit = work / f"{lane.name}.xml"
        if junit.is_file():  # for balancing the lanes: where each lane's time went
            modules = sorted(module_seconds(junit).items(), key=lambda item: -item[1])
            print(
                f"lane {lane.name}, seconds a module: " + ", ".join(f"{m} {t:.0f}" for m, t in modules[:25])
            )
    print(f"\nboth lanes done in {_minutes(time.monotonic() - started)}", flush=True)
    return next((codes[lane.name] for lane in lanes if codes[lane.name] != 0), 0)


# Each lane's log ends with pytest's failures, slowest tests and summary: print that part.
_TAIL_CHARS = 60_000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lanes", description=__doc__.split("\n")[0])
    parser.add_argument("--lane", choices=[lane.name for lane in LANES])
    parser.add_argument("--work", type=Path, help="where the lanes keep their logs, state and temp files")
    parser.add_argument("--in-lane", choices=["own", "shared"], help=argparse.SUPPRESS)
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)
    lanes = [lane for lane in LANES if args.lane in (None, lane.name)]
    work = args.work or Path(tempfile.mkdtemp(prefix="doorbuster-lanes-"))
    if args.in_lane:
        return _run_in_lane(lanes[0], work, args.pytest_args, isolated=args.in_lane == "own")
    isolated = _namespaces_work()
    if not isolated:
        print(
            "no network namespace here (unshare --net failed): the lanes run one after the other", flush=True
        )
        codes = [_both([lane], work, args.pytest_args, isolated=False) for lane in lanes]
        return next((code for code in codes if code != 0), 0)
    return _both(lanes, work, args.pytest_args, isolated=True)


if __name__ == "__main__":
    sys.exit(main())
