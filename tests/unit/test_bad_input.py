"""Fuzzed files (text and bytes: scenarios, --config, run directories) and command lines: a
message naming the file and exit 2 (or 3), never a traceback."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.analysis.inputs import Row, RunInputs
from harness.analysis.summary import analyse
from harness.cli.main import main
from harness.config.files import MAX_FILE_BYTES
from harness.config.scenarios import load_scenario
from harness.config.settings import load_settings
from harness.records.schema import RequestRecord
from model.errors import ConfigError, ExitCode

VALID: dict[str, Any] = {
    "name": "fuzzed",
    "load": {"stages": [{"name": "baseline", "duration": "10s", "rate": 2}]},
    "chaos": [{"name": "slow", "at": "1s", "for": "2s", "dependency": "email", "type": "latency",
               "attributes": {"latency": 100}}],
    "expectations": ["no lost orders"],
}  # fmt: skip

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=20),
    st.sampled_from(["10s", "-5s", "2m", "latency", "down", "both", "email", "broker", "nan", "1e999"]),
)  # fmt: skip
values = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
paths = st.sampled_from([
    ("name",), ("load",), ("load", "model"), ("load", "stages"), ("load", "stages", 0), ("load", "stages", 0, "rate"),
    ("load", "stages", 0, "duration"), ("chaos",), ("chaos", 0), ("chaos", 0, "type"), ("chaos", 0, "attributes"),
    ("chaos", 0, "at"), ("chaos", 0, "lanes"), ("expectations",), ("expectations", 0), ("stack",), ("stack", "sync"),
    ("stack", "chain"), ("metastability",), ("drain_timeout",), ("surprise",),
])  # fmt: skip


def _mutate(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    import copy

    result = copy.deepcopy(data)
    node = result
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return result
    with contextlib.suppress(IndexError, TypeError):
        node[path[-1]] = value
    return result


_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@given(path=paths, value=values)
@_SETTINGS
def test_a_mutated_scenario_loads_or_is_refused_by_name(
    tmp_path: Path, path: tuple[Any, ...], value: Any
) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(_mutate(VALID, path, value)))
    try:
        load_scenario(str(file))
    except ConfigError as exc:
        assert str(file) in str(exc)


@given(text=st.text(max_size=300))
@_SETTINGS
def test_any_text_as_a_scenario_file_never_crashes(tmp_path: Path, text: str) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(text)
    with contextlib.suppress(ConfigError):
        load_scenario(str(file))


@given(path=paths, value=values)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_cli_refuses_a_bad_scenario_with_exit_2_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: tuple[Any, ...], value: Any
) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump(_mutate(VALID, path, value)))
    try:
        load_scenario(str(file))
        return  # still valid: running it would start a stack, which is not this test's business
    except ConfigError:
        pass
    code = main(["--state-dir", str(tmp_path / "state"), "run", str(file), "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert "Traceback" not in captured.out + captured.err
    assert not (tmp_path / "state" / "supervisor.json").exists()
    assert not (tmp_path / "run").exists()


WORDS = ["toxic", "add", "list", "remove", "reset", "proxy", "enable", "disable", "status", "down", "report",
         "scenarios", "email", "broker", "latency", "timeout", "http_error", "--lane", "sync", "async", "both",
         "--attr", "latency=5", "rate=2", "=", "--for", "10s", "-1s", "--toxicity", "1.5", "--json", "--stream",
         "--help", "--nope", "NaN", "payment"]  # fmt: skip


@given(argv=st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=8))
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_command_lines_never_give_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    if argv and argv[0] in ("up", "run", "smoke", "dashboards"):
        return  # these start or write things
    code = main(["--state-dir", str(tmp_path / "none"), *argv])
    captured = capsys.readouterr()
    assert code in (0, ExitCode.USAGE, ExitCode.ENVIRONMENT), (argv, code, captured.err)
    assert "Traceback" not in captured.out + captured.err, argv


# -- bytes, not only text: every file doorbuster reads -----------------------------------------
def _refused_by_name(code: int, captured: tuple[str, str], file: Path) -> None:
    out, err = captured
    assert "Traceback" not in out + err
    assert code == ExitCode.USAGE, err
    assert str(file) in err, err


def test_bad_bytes_as_a_scenario_file_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "s.yaml"
    file.write_bytes(b"\x00\x01\x02\xff")
    code = main(["--state-dir", str(tmp_path / "state"), "run", str(file), "--out", str(tmp_path / "run")])
    _refused_by_name(code, capsys.readouterr(), file)
    assert "not UTF-8" in str(_config_error(file))


def _config_error(file: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_scenario(str(file))
    return caught.value


def test_a_directory_a_missing_an_unreadable_and_an_oversized_scenario_are_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "file").write_text("")
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written to the disk
    cases = {
        tmp_path / "dir.yaml": "is a directory",
        tmp_path / "missing.yaml": "no such file",
        tmp_path / "file" / "under-a-file.yaml": "can not read it",
        big: "larger than",
    }
    for file, why in cases.items():
        assert why in str(_config_error(file)), file
        code = main(
            ["--state-dir", str(tmp_path / "state"), "run", str(file), "--out", str(tmp_path / "run")]
        )
        _refused_by_name(code, capsys.readouterr(), file)
    assert not (tmp_path / "state").exists() and not (tmp_path / "run").exists()


@given(data=st.binary(max_size=300))
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_bytes_as_a_scenario_file_are_refused_by_name_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    file = tmp_path / "s.yaml"
    file.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_scenario(str(file))
        return  # a valid scenario: running it would start a stack, not this test's business
    code = main(["--state-dir", str(tmp_path / "state"), "run", str(file), "--out", str(tmp_path / "run")])
    _refused_by_name(code, capsys.readouterr(), file)
    assert not (tmp_path / "state" / "supervisor.json").exists()
    assert not (tmp_path / "run").exists()


@given(
    data=st.binary(max_size=300) | st.sampled_from([b"\x00\x01\x02\xff", b"ports: {base: \xff}", b"[1, 2"])
)
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_bytes_as_a_config_file_are_refused_by_name_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    file = tmp_path / "stack.yaml"
    file.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_settings(file, broker="rabbitmq", base_port=None, toxiproxy_port=None, time_scale=None)
        return  # valid settings (an empty file is): `up` would start a stack
    code = main(["--state-dir", str(tmp_path / "state"), "up", "--config", str(file)])
    _refused_by_name(code, capsys.readouterr(), file)
    assert not (tmp_path / "state" / "supervisor.json").exists()


def _run_dir(root: Path) -> Path:
    """A run directory as a run writes it, from a made-up run of a few seconds."""
    scenario = load_scenario(_scenario_file(root))[0]
    t0 = 1_700_000_000.0
    records = [
        RequestRecord.made(
            lane=lane, kind="checkout", intended_start=t0 + i, start=t0 + i + 0.01, end=t0 + i + 0.3,
            status=200 if lane == "sync" else 202, order_id=f"{lane}-{i}",
        )
        for i in range(10)
        for lane in ("sync", "async")
    ]  # fmt: skip
    rows = tuple(Row.from_record(r, t0) for r in records)
    summary = analyse(RunInputs(scenario=scenario, rows=rows, faults=(), load_end=10.0)).to_json()
    summary["t0"] = t0
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "series.json").write_text(json.dumps({"panels": {}}))
    (run_dir / "requests.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    return run_dir


def _scenario_file(root: Path) -> str:
    data = dict(VALID, chaos=[], expectations=["no lost orders"])
    (root / "valid.yaml").write_text(yaml.safe_dump(data))
    return str(root / "valid.yaml")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run_dir(tmp_path_factory.mktemp("reported"))


def test_the_made_up_run_directory_reports(run_dir: Path, tmp_path: Path) -> None:
    # The fuzzers below spoil one file of it at a time: whatever they see refused is theirs.
    assert main(["report", str(_copy(run_dir, tmp_path))]) == 0


def _copy(run_dir: Path, to: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run_dir, to / "copy", dirs_exist_ok=True))


def _valid_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"))
    except ValueError:
        return False
    return True


BAD_RECORDS = [b"\x00\x01\x02\xff", b"[1, 2]\n", b"{}\n", b'[1, 2, "sync", "checkout", 200, 0]\n',
               b'[1, "x", "sync", "checkout", 200, 0, "o"]\n', b"[1e999, 1e999, \"sync\", \"checkout\", 200, 0, \"o\"]\n",
               b'[NaN, 1, "sync", "checkout", 200, 0, "o"]\n', b'[1, 1, "sync", "checkout", 200, 0, "o"]\n',
               b'{"lane": "sync", "kind": "checkout", "intended_start": 1, "start": 1, "end": 2, "status": 500, '
               b'"ok": true, "order_id": "o", "attempt": 0}\n']  # fmt: skip


@pytest.mark.parametrize("name", ["summary.json", "series.json", "requests.jsonl"])
@given(
    data=st.binary(max_size=200)
    | st.sampled_from([b"[]", b"{}", b"1", b'{"panels": 1}', b"\xff", *BAD_RECORDS])
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_bytes_as_a_run_directory_file_are_refused_by_name_with_exit_2(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes
) -> None:
    copy = _copy(run_dir, tmp_path)
    (copy / name).write_bytes(data)
    code = main(["report", str(copy)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    # What may still report: an empty request log, or a series file that is a JSON object of
    # panels (like {}); anything else is refused, naming the file.
    if code == 0:
        assert (name == "requests.jsonl" and data == b"") or (name == "series.json" and _valid_json(data))
        return
    _refused_by_name(code, captured, copy / name)


def test_a_bad_request_record_is_refused_by_file_and_line(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(run_dir, tmp_path)
    log = copy / "requests.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([*lines[:2], b'["not", "a", "record"]\n', *lines[2:]]))
    code = main(["report", str(copy)])
    captured = capsys.readouterr()
    _refused_by_name(code, captured, log)
    assert "line 3" in captured.err
