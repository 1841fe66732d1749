"""rich stays at the CLI's edge: runs, sweeps and collection report progress through
harness.run.progress.RunProgress, and only the CLI's modules import rich."""

from __future__ import annotations

import ast
import subprocess
import sys

from harness.binaries import PROJECT_ROOT

PACKAGES = ("model", "harness", "targets", "locustfiles", "bench")
CLI_EDGE = {
    "harness/cli/main.py",
    "harness/cli/context.py",
    "harness/cli/progress.py",
    "harness/cli/verdicts.py",
    "harness/cli/commands/catalogue.py",
    "harness/cli/commands/compare.py",
    "harness/cli/commands/faults.py",
    "harness/cli/commands/run.py",
    "harness/cli/commands/stack.py",
    "harness/cli/commands/sweep.py",
}


def _imports_rich(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "rich" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rich":
            return True
    return False


def test_only_the_cli_edge_imports_rich() -> None:
    importers = {
        str(path.relative_to(PROJECT_ROOT))
        for package in PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if _imports_rich(path.read_text())
    }
    assert importers == CLI_EDGE


def test_a_run_and_a_sweep_load_no_rich() -> None:
    # Not even through another module: the run's whole import graph, in a fresh interpreter.
    code = (
        "import sys, harness.run.runner, harness.sweep.runner, harness.run.collect, harness.load.locust_group; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, cwd=PROJECT_ROOT
    )
    assert answer.stdout.strip() == "[]"
