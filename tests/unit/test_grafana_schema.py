"""Every generated dashboard passes the strict schema of Grafana's own Foundation SDK.

The checker is scripts/grafana-schema (Go, the SDK pinned in its go.mod), built into
.tools/bin by scripts/setup; ``make test`` runs the setup first, so a missing checker fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.binaries import PROJECT_BIN
from harness.config.systems import DEFAULT_SYSTEM, load_system, shipped_systems
from harness.metrics.panels import DASHBOARDS
from harness.stack.generated import dashboard, generated_files, system_dashboard

CHECKER = PROJECT_BIN / "doorbuster-grafana-schema"


@pytest.fixture(scope="module")
def checker() -> Path:
    assert CHECKER.is_file() and os.access(CHECKER, os.X_OK), (
        f"{CHECKER} is missing: scripts/setup builds it from scripts/grafana-schema (run `make setup`)"
    )
    return CHECKER


def _check(checker: Path, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(checker), *map(str, paths)], capture_output=True, text=True, timeout=60)


def _write(path: Path, board: dict[str, Any]) -> Path:
    path.write_text(json.dumps(board, indent=2, sort_keys=True) + "\n")
    return path


def test_every_generated_dashboard_passes_grafanas_strict_schema(tmp_path: Path, checker: Path) -> None:
    files = generated_files()
    paths = []
    for key in DASHBOARDS:  # as written into grafana/dashboards (test_generated: committed as such)
        paths.append(tmp_path / f"{key}.json")
        paths[-1].write_text(files[f"grafana/dashboards/{key}.json"])
    systems = [name for name in shipped_systems() if name != DEFAULT_SYSTEM]
    assert systems, "a shipped system of the user's (kinto) has a dashboard of its own"
    for name in systems:
        paths.append(_write(tmp_path / f"system-{name}.json", system_dashboard(load_system(name))))
    result = _check(checker, paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_the_checker_names_each_problem_of_a_dashboard(tmp_path: Path, checker: Path) -> None:
    board = dashboard("overview")
    del board["templating"]
    del board["links"][0]["icon"]
    del board["panels"][0]["options"]["legend"]["calcs"]
    board["panels"][1]["gridPos"]["w"] = "wide"
    board["colour"] = "orange"
    good = _write(tmp_path / "good.json", dashboard("overview"))
    bad = _write(tmp_path / "bad.json", board)
    result = _check(checker, [good, bad])
    assert result.returncode == 1, result.stdout + result.stderr
    problems = result.stdout.splitlines()
    assert all(line.startswith(f"{bad}: ") for line in problems), problems
    expected = ("templating", "links[0].icon", "panels[0].options.legend.calcs", "gridPos.w", "'colour'")
    for part in expected:
        assert any(part in line for line in problems), (part, problems)


def test_the_checker_refuses_what_is_not_a_dashboard_file(tmp_path: Path, checker: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = _check(checker, [broken, tmp_path / "missing.json"])
    assert result.returncode == 2
    assert f"{broken}: not valid JSON" in result.stderr
    assert "missing.json" in result.stderr
    assert _check(checker, []).returncode == 2
