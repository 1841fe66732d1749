"""run-status.json: what a run makes known to the live view, written whole and read back."""

from __future__ import annotations

from pathlib import Path

from harness.records.verdicts import Verdict
from harness.run.progress import LaneFigures, LiveFigures
from harness.run.status import RUN_STATUS_FILE, PublishedProgress, read_run_status
from tests.unit.progress_recorder import ProgressRecorder


def test_a_run_publishes_its_stage_faults_and_verdicts_and_passes_each_on(tmp_path: Path) -> None:
    inner = ProgressRecorder()
    progress = PublishedProgress(inner, tmp_path, scenario="black_friday", run_dir=tmp_path / "run")
    assert read_run_status(tmp_path) is not None and read_run_status(tmp_path).stage == "starting"  # type: ignore[union-attr]
    progress.stage("load", "load")
    figures = LiveFigures(
        scenario="black_friday", elapsed_s=12.0, duration_s=60.0, stage="spike",
        faults=("payment latency",), lanes=(LaneFigures(lane="sync", ok_per_s=5, p95_ok_s=0.2, errors_per_s=0),),
    )  # fmt: skip
    progress.tick(figures)
    during = read_run_status(tmp_path)
    assert during is not None
    assert (during.stage, during.load_stage, during.elapsed_s, during.faults) == (
        "load",
        "spike",
        12.0,
        ("payment latency",),
    )
    progress.done()
    progress.collecting()
    progress.judged(
        [
            Verdict(expectation="async p99 < 1s", outcome="pass", observed="0.3s"),
            Verdict(expectation="no duplicate charge", outcome="undetermined", observed="", reason="too few orders"),
        ]
    )  # fmt: skip
    progress.ended()  # after the verdicts: the run is done, not ended early
    after = read_run_status(tmp_path)
    assert after is not None and after.stage == "done" and after.outcome == "undetermined"
    assert [(v.outcome, v.reason) for v in after.verdicts] == [
        ("pass", None),
        ("undetermined", "too few orders"),
    ]
    assert inner.kinds == ["stage load", "tick", "done"]


def test_a_run_stopped_before_its_verdicts_says_so(tmp_path: Path) -> None:
    progress = PublishedProgress(ProgressRecorder(), tmp_path, scenario="s", run_dir=tmp_path)
    progress.stage("load", "load")
    progress.ended()
    status = read_run_status(tmp_path)
    assert status is not None and status.stage == "ended" and status.verdicts == ()


def test_an_unreadable_status_file_is_no_status(tmp_path: Path) -> None:
    assert read_run_status(tmp_path) is None
    (tmp_path / RUN_STATUS_FILE).write_text("{not json")
    assert read_run_status(tmp_path) is None
