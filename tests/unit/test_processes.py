"""A pid in a state file is signalled only while it is still the process that was recorded."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.processes import pid_alive, process_record, start_ticks, still_ours
from harness.stack.control import Stack
from harness.stack.state import StateDir


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not the harness's, in a session (and process group) of its own."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_recorded_process_is_ours_until_its_pid_means_another(bystander: subprocess.Popen[bytes]) -> None:
    record = process_record(bystander.pid)
    assert record["start"] == start_ticks(bystander.pid) and isinstance(record["start"], int)
    assert still_ours(bystander.pid, record["start"])
    assert not still_ours(bystander.pid, record["start"] - 1)  # what a reused pid looks like
    assert not still_ours(bystander.pid, None)  # a record that can not say
    assert not still_ours(0, record["start"])


@pytest.mark.parametrize("start", [None, "stale"], ids=["no start time", "another start time"])
def test_down_does_not_signal_a_process_that_took_a_recorded_pid(
    tmp_path: Path, bystander: subprocess.Popen[bytes], start: str | None
) -> None:
    """A stale supervisor.json and load.json (a reboot, a forged file) name a live process that
    is not the harness's: ``down`` leaves it alone."""
    recorded = None if start is None else start_ticks(bystander.pid) - 1  # type: ignore[operator]
    state = StateDir(tmp_path)
    state.prepare()
    state.write_supervisor(
        {
            "pid": bystander.pid,
            "start": recorded,
            "processes": {"order-sync": {"pid": bystander.pid, "start": recorded}},
        }
    )
    state.load_file.write_text(json.dumps({"processes": [{"pid": bystander.pid, "start": recorded}]}))
    stack = Stack(state)
    assert stack.supervisor_pid() is None
    stack.down(timeout_s=1)
    assert bystander.poll() is None and pid_alive(bystander.pid)
