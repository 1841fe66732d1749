"""A run's directory is its own: a run refuses one that holds files, before it starts anything."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest

from harness.binaries import PROJECT_ROOT
from harness.cli.main import main
from harness.records.run_dir import new_run_dir
from harness.run.plan import RunOptions
from harness.run.runner import run_scenario
from harness.stack.control import Stack
from model.errors import ConfigError, ExitCode
from tests.unit.progress_recorder import ProgressRecorder

EARLIER = (
    '{"lane": "sync", "kind": "checkout", "intended_start": 1.0, "start": 1.0, "end": 2.0, '
    '"status": 200, "ok": true, "order_id": "o1", "attempt": 0}\n'
)
SCENARIO = """\
name: tiny
load: {stages: [{name: baseline, duration: 10s, rate: 2}]}
expectations: ["no lost orders"]
"""


class UntouchableStack:
    """A stack that fails the test if the run so much as looks at it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the run used the stack ({name}) before refusing its run directory")


def _earlier_run(tmp_path: Path) -> Path:
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "requests.jsonl").write_text(EARLIER)
    return out


def test_a_run_refuses_a_run_directory_that_holds_files_before_it_touches_the_stack(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SCENARIO)
    out = _earlier_run(tmp_path)
    options = RunOptions(scenario=str(tmp_path / "s.yaml"), out=out)
    progress = ProgressRecorder()
    with pytest.raises(ConfigError, match=f"{re.escape(str(out))}: not empty"):
        run_scenario(options, cast(Stack, UntouchableStack()), progress)
    assert (out / "requests.jsonl").read_text() == EARLIER
    assert progress.events == []  # refused before any stage began


def test_the_cli_says_which_run_directory_and_what_to_do_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.yaml").write_text(SCENARIO)
    out = _earlier_run(tmp_path)
    # A state dir no stack can use: should the check ever go, this fails at once instead of
    # starting a stack.
    state = tmp_path / "state-is-a-file"
    state.write_text("")
    code = main(["--state-dir", str(state), "run", str(tmp_path / "s.yaml"), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE, captured.err
    assert f"{out}: not empty" in captured.err and "give a new or empty directory" in captured.err
    assert "Traceback" not in captured.out + captured.err
    assert [p.name for p in out.iterdir()] == ["requests.jsonl"]


def test_an_empty_or_new_run_directory_is_taken(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert new_run_dir(tmp_path / "empty", "tiny") == tmp_path / "empty"
    assert new_run_dir(tmp_path / "new", "tiny") == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # made by the run, once it starts


def test_a_file_is_not_a_run_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        new_run_dir(tmp_path / "file", "tiny")


def test_the_default_run_directory_is_runs_time_name() -> None:
    run_dir = new_run_dir(None, "black-friday")
    assert run_dir.parent == PROJECT_ROOT / "runs"
    assert re.fullmatch(r"\d{8}-\d{6}-black-friday", run_dir.name), run_dir.name
