"""The run report of a short real run, opened in headless Chromium: every image loads, the
verdicts and the three story charts are on the first screen, the load generator's health is
drawn from its samples, and ``doorbuster judge`` draws the same page again from the run's files
alone."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from harness.cli.main import main
from harness.report.generator_chart import GENERATOR_CHART
from model.errors import ExitCode
from tests.browser import headless_chromium
from tests.integration.conftest import RunningStack
from tests.report_page import FIRST_SCREEN, check_report_page

BLIP = """
name: blip
load:
  stages:
    - {name: baseline, duration: 6s, rate: 4}
    - {name: after, duration: 12s, rate: 4}
  poll: {initial: 0.5s, max: 2s, give_up: 60s}
chaos:
  - {name: email-slow, at: 6s, for: 6s, dependency: email, type: latency, attributes: {latency: 2000}}
expectations:
  - "async.checkout.p50 < 0.8s at baseline"
  - "no lost orders"
drain_timeout: 60s
"""
STORY = ("story-arrivals.png", "story-latency.png", "story-backlog.png")


def _check(report: Path, screenshot: Path) -> set[str]:
    with headless_chromium() as browser:
        images = check_report_page(browser, report, screenshot)
    with Image.open(screenshot) as shot:
        assert shot.size == (FIRST_SCREEN["width"], FIRST_SCREEN["height"])
    return set(images)


def test_the_report_of_a_real_run_tells_its_story_on_the_first_screen(
    stack: RunningStack, tmp_path: Path
) -> None:
    scenario, out = tmp_path / "blip.yaml", tmp_path / "run"
    scenario.write_text(BLIP)
    assert main(["--state-dir", str(stack.state_dir), "run", str(scenario), "--out", str(out)]) == ExitCode.OK
    images = _check(out / "report.html", tmp_path / "first-screen.png")
    # The story, then every panel of the catalogue the run recorded, each drawn once.
    series = json.loads((out / "series.json").read_text())
    panels = {f"panel-{key}.png" for key, lines in series["panels"].items() if lines}
    assert len(panels) >= 15, panels
    # The generator's health from generator.jsonl, on the run's time axis; not a panel of series.json.
    assert images == {*STORY, GENERATOR_CHART, "fulfillment.png", *panels}
    assert not any(key.startswith("generator_") for key in series["panels"])
    for png in STORY:
        with Image.open(out / png) as chart:
            assert chart.size[0] > 2 * chart.size[1], (png, chart.size)  # sync | async, side by side
    page = (out / "report.html").read_text()
    assert "email-slow" in page and "PASSED" in page and "0 lost of 72 accepted" in page
    assert 'id="generator"' in page and "No generator-health chart" not in page
    with Image.open(out / GENERATOR_CHART) as chart:
        assert chart.size[0] > 2 * chart.size[1], chart.size  # one figure, its four panels two by two

    # judge, with no stack, draws the same page again from the files.
    for name in ("report.html", *images):
        (out / name).unlink()
    no_stack = tmp_path / "state-is-a-file"
    no_stack.write_text("")
    assert main(["--state-dir", str(no_stack), "judge", str(out)]) == ExitCode.OK
    assert (out / "report.html").read_text() == page
    assert _check(out / "report.html", tmp_path / "judged.png") == images
