"""Fuzzed scenario files and command lines: a message and exit 2 (or 3), never a traceback."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.errors import ConfigError, ExitCode
from harness.scenario import load_scenario

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
