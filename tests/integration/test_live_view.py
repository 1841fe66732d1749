"""The live view in a real headless Chromium during a short real run: every chart of the page
draws data from the stack's Prometheus, the run's stage and then its verdicts show, a fault is
added and removed from the page, a request from another origin changes nothing, and a
screenshot is saved (``DOORBUSTER_LIVE_SCREENSHOT=docs/live-view.png`` saves its first screen
there: the manual's, docs/stack/live-view.md).  Also: the same page as a tab of Locust's own web UI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from playwright.sync_api import Page

from tests.browser import headless_chromium
from tests.integration.conftest import RunningStack
from tests.integration.short_run import SHORT, start_web_locust

_FOREVER_S = 90  # bound on every wait below
TAB_KEY = "doorbuster-live"  # the tab's key and path in Locust's web UI, as a user sees them


def _wait(what: str, check: Callable[[], bool], timeout_s: float = _FOREVER_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@contextmanager
def _run(stack: RunningStack, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SHORT)
    log = tmp_path / "run.log"
    cmd = [sys.executable, "-m", "harness.cli.main", "--state-dir", str(stack.state_dir), "run", str(scenario),
           "--out", str(tmp_path / "run")]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        print(log.read_text(errors="replace")[-2000:])


def _charts(page: Page) -> dict[str, int]:
    points: dict[str, int] = page.eval_on_selector_all(
        ".chart",
        "els => Object.fromEntries(els.map(e => [e.dataset.panel + '/' + (e.dataset.lane || 'all'),"
        " Number(e.dataset.points)]))",
    )
    return points


def _faults(stack: RunningStack) -> set[str]:
    return {f"{f.lane}-{f.dependency}:{f.type}" for f in stack.chaos.active()}


def test_the_live_page_draws_every_panel_of_a_run_and_changes_faults_from_its_own_origin_only(
    stack: RunningStack, tmp_path: Path
) -> None:
    url = stack.stack.status().as_json()["live"]["url"]
    assert url == f"http://127.0.0.1:{stack.topology.ports['live']}/"
    with _run(stack, tmp_path) as run, headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(url)
        page.select_option("#range", "120")
        _wait(
            "the run's load stage on the page",
            lambda: page.get_attribute("#run-stage", "data-stage") == "load",
        )
        assert "short" in page.inner_text("#run-stage")

        # A fault from the page: through the CLI's path, on the real Toxiproxy, listed on the page.
        page.select_option("#fault-form [name=dependency]", "inventory")
        page.select_option("#fault-form [name=type]", "latency")
        page.select_option("#fault-form [name=lane]", "sync")
        page.fill("#fault-form [name=attributes]", "latency=1")
        page.click("#fault-form button[type=submit]")
        _wait("the fault added from the page", lambda: "sync-inventory:latency" in _faults(stack))
        item = page.locator("#fault-list li.fault[data-dependency=inventory]")
        item.wait_for(timeout=20_000)
        assert "applied by doorbuster live view" in item.inner_text()
        # A page's bad fault: the server's message, shown, and nothing applied.
        page.fill("#fault-form [name=attributes]", "latency=fast")
        page.click("#fault-form button[type=submit]")
        _wait("the refusal shown", lambda: "expected a finite number" in page.inner_text("#fault-message"))
        page.fill("#fault-form [name=attributes]", "latency=1000")
        item.locator("button").click()
        _wait("the fault removed from the page", lambda: "sync-inventory:latency" not in _faults(stack))

        # Another origin (Prometheus' page, another port on loopback) posting with the token:
        # the browser sends its Origin, and the server refuses it.
        token = page.get_attribute("body", "data-token")
        other = browser.new_page()
        other.goto(f"{stack.topology.prometheus.url}/graph")
        body = json.dumps({"dependency": "inventory", "type": "latency", "attributes": {"latency": 1}})
        other.evaluate(
            "([url, body]) => fetch(url, {method: 'POST', mode: 'no-cors', body}).catch(() => null)",
            [f"{url}api/faults", body],
        )
        refused = requests.post(
            f"{url}api/faults", data=body, timeout=10,
            headers={"Origin": stack.topology.prometheus.url, "X-Doorbuster-Token": str(token)},
        )  # fmt: skip
        assert refused.status_code == 403 and "refused" in refused.json()["error"]
        assert "sync-inventory:latency" not in _faults(stack) and "async-inventory:latency" not in _faults(
            stack
        )
        other.close()

        # Every chart of every panel has data from the run (the email fault included).
        _wait("every chart to have data", lambda: bool(_charts(page)) and min(_charts(page).values()) > 0)
        charts = _charts(page)
        assert len(charts) >= 23, charts
        assert {
            "latency/sync",
            "latency/async",
            "faults/sync",
            "faults/async",
            "pool/sync",
            "backlog/async",
            # The load generator's health, one chart across the page, a line per generator process.
            "generator_send_lag/all",
            "generator_loop_lag/all",
            "generator_cpu/all",
            "generator_unsent/all",
        } <= set(charts)
        legends = page.eval_on_selector_all(
            ".chart[data-panel=generator_cpu] .u-legend .u-label", "els => els.map(e => e.textContent)"
        )
        assert any(legend.strip().startswith("generator ") for legend in legends), legends
        _wait("the run to finish", lambda: run.poll() is not None, timeout_s=120)
        _wait("the verdicts on the page", lambda: page.locator("#verdicts tr.verdict").count() > 0)
        assert page.get_attribute("#run-stage", "data-stage") == "done"
        outcomes = page.eval_on_selector_all(
            "#verdicts tr.verdict", "rows => rows.map(r => r.dataset.outcome)"
        )
        assert "fail" in outcomes and "pass" in outcomes  # SHORT has one expectation false on purpose
        page.evaluate("window.doorbusterLive.refresh()")
        page.wait_for_timeout(1500)
        shot = tmp_path / "live-view.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000
        readme_shot = os.environ.get("DOORBUSTER_LIVE_SCREENSHOT")
        if readme_shot:  # the manual's: the first screen (the run, the faults, the first panels)
            page.set_viewport_size({"width": 1400, "height": 1250})
            page.screenshot(path=readme_shot)


def test_locusts_own_web_ui_has_the_live_view_as_a_tab(stack: RunningStack, tmp_path: Path) -> None:
    port = 23189
    locust = start_web_locust(stack, tmp_path, port)
    ui = f"http://127.0.0.1:{port}"
    try:
        assert requests.post(f"{ui}/swarm", data={"user_count": 1, "spawn_rate": 1}, timeout=10).ok
        with headless_chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{ui}/?tab={TAB_KEY}")
            page.get_by_role("tab", name="Live view (doorbuster)").wait_for(timeout=30_000)
            page.locator("#doorbuster-live-frame").wait_for(timeout=30_000)
            frame = page.frame_locator("#doorbuster-live-frame")
            chart = frame.locator(".chart[data-panel=arrivals][data-lane=sync]")
            chart.wait_for(timeout=30_000)
            _wait(
                "Locust's arrivals in the tab's chart",
                lambda: int(chart.get_attribute("data-points") or 0) > 0,
            )

            # The tab's page changes faults too, through Locust's origin, checked, then the live server.
            frame.locator("#fault-form [name=dependency]").select_option("inventory")
            frame.locator("#fault-form [name=type]").select_option("latency")
            frame.locator("#fault-form [name=lane]").select_option("async")
            frame.locator("#fault-form [name=attributes]").fill("latency=1")
            frame.locator("#fault-form button[type=submit]").click()
            _wait("the fault added from Locust's tab", lambda: "async-inventory:latency" in _faults(stack))
            frame.locator("#fault-list li.fault[data-dependency=inventory] button").click()
            _wait(
                "the fault removed from Locust's tab", lambda: "async-inventory:latency" not in _faults(stack)
            )
            page.screenshot(path=str(tmp_path / "locust-tab.png"))
        token = requests.get(f"{ui}/{TAB_KEY}/", timeout=10).text.split('data-token="')[1].split('"')[0]
        body = {"dependency": "inventory", "type": "latency", "attributes": {"latency": 1}}
        refused = requests.post(
            f"{ui}/{TAB_KEY}/api/faults", json=body, timeout=10,
            headers={"Origin": "http://evil.example", "X-Doorbuster-Token": token},
        )  # fmt: skip
        assert refused.status_code == 403 and "refused" in refused.json()["error"]
        assert not any(
            f.startswith("sync-inventory") or f.startswith("async-inventory") for f in _faults(stack)
        )
    finally:
        requests.post(f"{ui}/stop", timeout=10)
        os.killpg(locust.pid, signal.SIGTERM)
        locust.wait(30)
