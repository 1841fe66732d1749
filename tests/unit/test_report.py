"""The run report of run directories written with the run's own record types: one time axis
for every chart, and a one-lane system's page (no async lane, no series) in headless Chromium."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PIL import Image

from harness.analysis.inputs import Row
from harness.cli.main import main
from harness.records.summary import ChaosWindow, RunFacts, Summary
from harness.report.charts import time_axis
from model.errors import ExitCode
from tests.browser import headless_chromium
from tests.report_page import check_report_page
from tests.unit.run_dirs import T0, steady_records, steady_scenario, write_run_dir


def _row(intended: float, end: float, kind: str = "checkout") -> Row:
    return Row(intended, end, "async", kind, 200, 0, "a1")


def test_the_time_axis_runs_from_0_to_the_last_thing_the_run_recorded() -> None:
    slow = ChaosWindow(
        name="slow", dependency="payment", lanes=("sync",), type="latency", attributes={},
        start_s=10.0, end_s=20.0, applied=True, removed=True,
    )  # fmt: skip
    summary = Summary(
        scenario="s", duration_s=30.0, lanes={}, chaos=(slow,), passed=True, run=RunFacts(t0=T0)
    )
    series = {"start": T0 - 15, "end": T0 + 33.0}
    assert time_axis(summary, [_row(1, 2)], {}).end == 30.0
    assert time_axis(summary, [_row(1, 2)], series).end == 33.0
    # A fulfilment seen during the drain, long after the load, is on the axis too.
    axis = time_axis(summary, [_row(1, 2), _row(29, 61.5, "fulfillment")], series)
    assert axis.end == 61.5 and axis.faults == (("slow", 10.0, 20.0),)
    assert axis.centres()[0] == 0.5 and axis.centres()[-1] == 61.5
    long = time_axis(replace(summary, duration_s=1200.0), [], {})
    assert long.bucket_s == 10.0 and len(long.centres()) == 120


def test_a_one_lane_systems_report_loads_every_image_with_its_story_first(tmp_path: Path) -> None:
    scenario = steady_scenario("one-lane", seconds=30, expectations=["sync.error_rate < 50%"])
    # 10 a second; every 10th fails after 2 s
    records = steady_records("sync", 300, 0.1, lambda i: 2.0 if i % 10 == 0 else 0.2, lambda i: i % 10 == 0)
    run_dir = write_run_dir(tmp_path / "run", scenario, records)
    no_stack = tmp_path / "state-is-a-file"
    no_stack.write_text("")
    assert main(["--state-dir", str(no_stack), "judge", str(run_dir)]) == ExitCode.OK
    page = (run_dir / "report.html").read_text()
    assert "PASS" in page and "sync.error_rate &lt; 50%" in page and "async" not in page.lower()
    with headless_chromium() as browser:
        images = check_report_page(browser, run_dir / "report.html", tmp_path / "first-screen.png")
    assert images == ["story-arrivals.png", "story-latency.png", "story-backlog.png", "fulfillment.png"]
    with Image.open(run_dir / "story-latency.png") as chart:
        assert chart.size[0] < 2 * chart.size[1] + 100  # the one lane, not a pair
