"""Bring your own system: the manual's walk through Kinto (docs/systems/kinto.md), installed
from PyPI, on Debian's PostgreSQL, with Toxiproxy on the database hop, as a user runs it:
``up --system``, faults by dependency name, ``run kinto-db`` (the hop slowed, then cut), the
verdicts, ``judge``, ``down``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli.main import main
from harness.metrics.prometheus import PrometheusClient
from harness.run.judge import judge_run
from harness.stack.control import Stack
from harness.stack.state import StateDir
from model.errors import ExitCode
from tests.browser import headless_chromium
from tests.report_page import check_report_page

BASE_PORT = 30400
KINTO = Path(__file__).resolve().parents[2] / ".tools" / "venvs" / "kinto" / "bin" / "kinto"


def _cli(state: Path, *args: str) -> int:
    return main(["--state-dir", str(state), *args])


def _ports() -> list[str]:
    return ["--base-port", str(BASE_PORT), "--toxiproxy-port", str(BASE_PORT + 474)]


def test_a_bad_system_file_starts_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "shop.yaml"
    bad.write_text(yaml.safe_dump({"name": "shop", "services": [{"name": "api", "command": "shop --serve"}],
                                   "lanes": {"sync": {"url": "http://{service:api}/"}}}))  # fmt: skip
    state = tmp_path / "state"
    assert _cli(state, "up", "--system", str(bad), *_ports()) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert str(bad) in err and "services.0.command" in err and "Traceback" not in err
    assert Stack(StateDir(state)).supervisor_pid() is None


def test_kinto_on_postgres_slowed_then_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert KINTO.exists(), "scripts/setup installs Kinto into .tools/venvs/kinto"
    state, out = tmp_path / "state", tmp_path / "run"
    try:
        assert _cli(state, "up", "--system", "kinto", *_ports()) == ExitCode.OK
        capsys.readouterr()
        assert _cli(state, "status", "--json") == ExitCode.OK
        status = json.loads(capsys.readouterr().out)
        assert status["system"] == "kinto" and list(status["lanes"]) == ["sync"]
        assert [p["name"] for p in status["toxiproxy"]["proxies"]] == ["sync-db"]
        assert {p["name"]: p["healthy"] for p in status["processes"]} == {
            "toxiproxy": True, "prometheus": True, "db": True, "api": True, "live": True,
        }  # fmt: skip
        # A fault by dependency name reaches the one lane with that hop.
        assert _cli(state, "toxic", "add", "db", "latency", "--attr", "latency=50") == ExitCode.OK
        capsys.readouterr()
        assert _cli(state, "status", "--json") == ExitCode.OK
        faults = json.loads(capsys.readouterr().out)["faults"]
        assert [(f["lane"], f["dependency"], f["type"]) for f in faults] == [("sync", "db", "latency")]
        assert _cli(state, "toxic", "reset") == ExitCode.OK

        code = _cli(state, "run", "kinto-db", "--out", str(out), *_ports())
        summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
        outcomes = {v["expectation"]: (v["outcome"], v.get("reason")) for v in summary["verdicts"]}
        assert all(outcome == "pass" for outcome, _ in outcomes.values()), outcomes
        assert code == ExitCode.OK
        chaos = json.loads((out / "chaos.json").read_text())
        assert [(f["name"], f["lanes"]) for f in chaos["faults"]] == [
            ("db-slow", ["sync"]),
            ("db-down", ["sync"]),
        ]
        assert "orders" not in summary["lanes"]["sync"]  # Kinto keeps no order ledger
        # Prometheus scraped Kinto's own metrics, at the path its system file names.
        topology = Stack(StateDir(state)).running_topology()
        found = PrometheusClient(topology.prometheus.url).query(
            'count({process="api", __name__=~"kinto_.*"})'
        )
        assert found and float(found[0]["value"][1]) > 0
        assert judge_run(out, write=False).to_json()["verdicts"] == summary["verdicts"]
        # The report of a system with one lane and no ledger: its story still on the first screen.
        with headless_chromium() as browser:
            images = check_report_page(browser, out / "report.html", tmp_path / "first-screen.png")
        story = {"story-arrivals.png", "story-latency.png", "story-backlog.png"}
        assert {*story, "panel-faults.png"} <= set(images)
    finally:
        assert _cli(state, "down") == ExitCode.OK
    left = subprocess.run(["pgrep", "-f", f"{state}"], capture_output=True, text=True)
    assert left.stdout == "", f"processes of the stack left running: {left.stdout}"
