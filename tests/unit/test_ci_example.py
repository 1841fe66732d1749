"""The example GitHub Actions workflow (examples/github-actions/doorbuster.yml) passes actionlint.

actionlint is built into .tools/bin by scripts/setup (pinned there); ``make test`` runs the
setup first, so a missing actionlint fails.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.binaries import PROJECT_BIN, PROJECT_ROOT

ACTIONLINT = PROJECT_BIN / "actionlint"
WORKFLOW = PROJECT_ROOT / "examples" / "github-actions" / "doorbuster.yml"


@pytest.fixture(scope="module")
def actionlint() -> Path:
    assert ACTIONLINT.is_file() and os.access(ACTIONLINT, os.X_OK), (
        f"{ACTIONLINT} is missing: scripts/setup installs it with go install (run `make setup`)"
    )
    return ACTIONLINT


def _lint(actionlint: Path, workflow: Path) -> subprocess.CompletedProcess[str]:
    # shellcheck and pyflakes are used when on PATH; disabled, the verdict is the same everywhere.
    return subprocess.run(
        [str(actionlint), "-no-color", "-shellcheck=", "-pyflakes=", str(workflow)],
        capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT,
    )  # fmt: skip


def test_actionlint_accepts_the_example_workflow(actionlint: Path) -> None:
    result = _lint(actionlint, WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_names_what_is_wrong_in_a_broken_copy(tmp_path: Path, actionlint: Path) -> None:
    text = WORKFLOW.read_text()
    for right, wrong in (("runs-on:", "runs_on:"), ("steps.baseline.outputs", "steps.basline.outputs")):
        assert right in text
        text = text.replace(right, wrong)
    broken = tmp_path / "doorbuster.yml"
    broken.write_text(text)
    result = _lint(actionlint, broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"runs_on"' in result.stdout and '"basline"' in result.stdout, result.stdout


def _steps() -> list[dict[str, Any]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps: list[dict[str, Any]] = workflow["jobs"]["scenario"]["steps"]
    return steps


def test_the_example_sets_up_runs_a_scenario_with_junit_and_compares_with_a_baseline() -> None:
    commands = [step["run"] for step in _steps() if "run" in step]
    assert any(c.strip() == "make setup" for c in commands), commands
    runs = [c for c in commands if "doorbuster run " in c]
    assert len(runs) == 1 and "--junit " in runs[0] and "--out runs/new" in runs[0], runs
    compares = [c for c in commands if "doorbuster compare " in c]
    assert compares == [".venv/bin/doorbuster compare runs/baseline runs/new --max-regression 10%"], compares
    uploads = [s for s in _steps() if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads and uploads[0]["with"]["path"] == "runs/", uploads
