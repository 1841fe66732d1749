"""Options the CLI parses, checked below it before anything starts: the run's ports and
targets (harness.run.plan), the time scale (harness.config.timescale, one check for run,
sweep and a scaled scenario), and the command that resumes a sweep (harness.sweep.runner)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness.config.timescale import check_time_scale
from harness.run.plan import parse_targets, port_settings
from harness.sweep.runner import resume_command
from model.errors import ConfigError
from model.settings import PortSettings


def test_ports_default_to_the_running_stack_s() -> None:
    assert port_settings(None, None) is None
    assert port_settings(25000, None) == PortSettings(base=25000)
    assert port_settings(None, 25474) == PortSettings(toxiproxy_api=25474)


def test_bad_ports_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^ports: "):
        port_settings(80, None)  # a privileged port


def test_targets_are_lane_equals_url() -> None:
    assert parse_targets([]) == {}
    assert parse_targets(["sync=http://127.0.0.1:9000", "async=http://127.0.0.1:9001/x=y"]) == {
        "sync": "http://127.0.0.1:9000",
        "async": "http://127.0.0.1:9001/x=y",
    }
    for bad in ("sync", "sync=", "http://127.0.0.1:9000"):
        with pytest.raises(ConfigError, match=r"^--target .*: expected LANE=URL"):
            parse_targets([bad])


@pytest.mark.parametrize("scale", [None, 0.01, 1, 10])
def test_a_time_scale_from_just_above_0_to_10(scale: float | None) -> None:
    check_time_scale(scale)


@pytest.mark.parametrize("scale", [0, -1, 10.5, float("nan")])
def test_a_time_scale_outside_is_refused(scale: float) -> None:
    with pytest.raises(ConfigError, match=r"^--time-scale must be more than 0 and at most 10, got "):
        check_time_scale(scale)


def test_the_resume_command_repeats_the_options_given(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "my sweep"
    command = resume_command(
        sweep_dir, "retry-storm", time_scale=0.5, max_time="10m", config=Path("stack settings.yaml")
    )
    assert shlex.split(command) == [
        "doorbuster", "sweep", "retry-storm", "--time-scale", "0.5", "--max-time", "10m",
        "--config", "stack settings.yaml", "--out", str(sweep_dir),
    ]  # fmt: skip
    assert shlex.split(resume_command(sweep_dir)) == ["doorbuster", "sweep", "--out", str(sweep_dir)]
