"""A run's progress through harness.run.progress.RunProgress: the stages a run step reports, the
live figures made from the run directory, and the CLI's edge showing them."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from harness.cli.progress import ConsoleProgress
from harness.records.run_dir import RunDir
from harness.records.schema import RequestRecord
from harness.run.progress import LiveFigures, LiveTail
from harness.run.runner import drive_load, ensure_stack
from model.errors import EnvironmentProblem
from model.scenario import Scenario
from tests.unit.fake_stack import FakeStack
from tests.unit.progress_recorder import ProgressRecorder

SCENARIO = Scenario.model_validate(
    {
        "name": "tiny",
        "load": {"stages": [{"name": "baseline", "duration": "30s", "rate": 2}]},
        "expectations": ["no lost orders"],
    }
)


class LoadFor:
    """A load process that runs for ``polls`` polls, then ends."""

    def __init__(self, polls: int) -> None:
        self.left = polls

    def running(self) -> bool:
        self.left -= 1
        return self.left >= 0


def test_starting_the_stack_is_a_stage_that_ends(tmp_path: Path) -> None:
    stack, progress = FakeStack(tmp_path), ProgressRecorder()
    topology = ensure_stack(stack, SCENARIO, progress)
    assert progress.kinds == ["stage stack", "done"]
    assert stack.ups == [SCENARIO.stack] and topology.settings == SCENARIO.stack


def test_a_stack_with_other_settings_is_restarted_and_the_run_says_so(tmp_path: Path) -> None:
    other = SCENARIO.stack.model_copy(update={"broker": "redis"})
    stack, progress = FakeStack(tmp_path, running=other), ProgressRecorder()
    ensure_stack(stack, SCENARIO, progress)
    assert progress.kinds == [
        "note restarting the stack with this scenario's settings",
        "stage stack",
        "done",
    ]
    assert stack.downs == 1 and stack.ups == [SCENARIO.stack]


def test_a_running_stack_with_the_settings_is_used_with_no_stage(tmp_path: Path) -> None:
    stack, progress = FakeStack(tmp_path, running=SCENARIO.stack), ProgressRecorder()
    ensure_stack(stack, SCENARIO, progress)
    assert progress.events == [] and stack.ups == [] and stack.downs == 0


def _log(run_dir: RunDir, *records: RequestRecord) -> None:
    with run_dir.requests.open("a") as fh:
        for rec in records:
            fh.write(json.dumps(rec.to_json()) + "\n")


def _checkout(lane: str, latency_s: float, status: int, order_id: str) -> RequestRecord:
    now = time.time()
    return RequestRecord.made(
        lane=lane, kind="checkout", intended_start=now - latency_s, start=now - latency_s,
        end=now, status=status, order_id=order_id,
    )  # fmt: skip


def test_the_load_stage_ticks_with_the_live_figures_each_second_and_ends(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    _log(run_dir, *(_checkout("sync", 0.5, 200, f"s{i}") for i in range(4)), _checkout("async", 0.1, 503, ""))
    (tmp_path / "chaos.json").write_text(
        json.dumps(
            {"t0": time.time(), "faults": [{"name": "email-slow", "started_at": 1.0, "ended_at": None}]}
        )
    )
    progress, seconds = ProgressRecorder(), []
    drive_load(
        LoadFor(2), LiveTail(SCENARIO, run_dir), progress,
        limit_s=60, log=tmp_path / "locust.log", each_second=lambda: seconds.append(1), poll_s=0.01,
    )  # fmt: skip
    assert progress.kinds == ["stage load", "tick", "tick", "tick", "done"]  # at once, then per poll
    assert len(seconds) == 2
    first = progress.events[1][1]
    assert isinstance(first, LiveFigures)
    assert first.scenario == "tiny" and first.stage == "baseline" and first.faults == ("email-slow",)
    sync, async_ = first.lanes
    assert (sync.lane, sync.ok_per_s, sync.errors_per_s) == ("sync", 0.4, 0.0)
    assert sync.p95_ok_s == pytest.approx(0.5, abs=1e-3)
    assert (async_.lane, async_.ok_per_s, async_.p95_ok_s, async_.errors_per_s) == ("async", 0.0, None, 0.1)


def test_the_live_figures_read_each_workers_shard_once_also_after_it_is_closed(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.requests.write_text("")  # a distributed run's master writes no record until the merge
    run_dir.shards.mkdir()
    writing = run_dir.shard("0").with_name("worker-0.jsonl.part")
    writing.write_text(_checkout("sync", 0.2, 200, "a").json_line())
    run_dir.shard("1").write_text(_checkout("sync", 0.2, 200, "b").json_line())
    tail = LiveTail(SCENARIO, run_dir)
    assert tail.figures().lanes[0].ok_per_s == 0.2  # two in the 10 s window
    with writing.open("a") as fh:
        fh.write(_checkout("sync", 0.2, 200, "c").json_line())
    writing.rename(run_dir.shard("0"))  # its worker closed it: read on from where it was
    assert tail.figures().lanes[0].ok_per_s == pytest.approx(0.3)


def test_a_load_past_its_limit_is_an_environment_problem_and_the_stage_still_ends(tmp_path: Path) -> None:
    progress = ProgressRecorder()
    with pytest.raises(EnvironmentProblem, match="did not finish within 0s"):
        drive_load(
            LoadFor(1000), LiveTail(SCENARIO, RunDir(tmp_path)), progress,
            limit_s=0, log=tmp_path / "locust.log", each_second=lambda: None, poll_s=0.01,
        )  # fmt: skip
    assert progress.kinds[0] == "stage load" and progress.kinds[-1] == "done"


def test_the_console_shows_the_live_table_and_the_spinner_stages(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    _log(run_dir, _checkout("sync", 0.25, 200, "s1"))
    screen = io.StringIO()
    progress = ConsoleProgress(Console(file=screen, width=120))
    progress.stage("stack", "starting the stack...")
    progress.done()
    progress.stage("load", "load")
    progress.tick(LiveTail(SCENARIO, run_dir).figures())
    progress.done()
    progress.note("removed a leftover fault: [email]")
    shown = screen.getvalue()
    assert "tiny:" in shown and "stage baseline;" in shown and "faults: none" in shown
    assert "0.25s" in shown and "removed a leftover fault: [email]" in shown
