"""A run's seed and arrival process, decided before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.scenarios import load_scenario
from harness.config.timescale import time_scaled
from harness.run.plan import seeded
from model.errors import ConfigError

REPLAYED = """
name: replayed
load:
  lanes: [sync]
  arrivals: replay
  replay: {file: access.log, speed: 2, lanes: [{path: "^/orders", lane: sync}]}
  stages: [{name: steady, duration: 30s, rate: 1}]
"""
LINE = '127.0.0.1 - - [07/Dec/2026:10:00:{s:02d} +0000] "POST /orders HTTP/1.1" 202 10'


def _scenario(tmp_path: Path, text: str = REPLAYED, log: str | None = None) -> Path:
    (tmp_path / "scenario.yaml").write_text(text)
    if log is not None:
        (tmp_path / "access.log").write_text(log)
    return tmp_path / "scenario.yaml"


def test_a_run_without_a_seed_gets_one_and_one_given_wins(tmp_path: Path) -> None:
    scenario, _ = load_scenario(str(_scenario(tmp_path, REPLAYED, LINE.format(s=1))))
    assert scenario.seed is None
    picked = {seeded(scenario).seed for _ in range(5)}
    assert None not in picked and len(picked) > 1  # a new one each run, recorded with it
    assert seeded(scenario, 42).seed == 42
    assert seeded(seeded(scenario, 42)).seed == 42  # the scenario's own is kept
    with pytest.raises(ConfigError, match=r"--seed: expected a whole number"):
        seeded(scenario, -1)


def test_the_replayed_log_is_read_beside_the_scenario_and_checked_before_anything_starts(
    tmp_path: Path,
) -> None:
    path = _scenario(tmp_path, REPLAYED, f"{LINE.format(s=1)}\nGET /orders\n")
    scenario, _ = load_scenario(str(path))
    assert scenario.load.replay is not None
    assert scenario.load.replay.file == str((tmp_path / "access.log").resolve())
    with pytest.raises(ConfigError, match=r"access\.log:2: expected a Common or Combined Log Format line"):
        seeded(scenario)
    (tmp_path / "access.log").unlink()
    with pytest.raises(ConfigError, match=r"access\.log: no such file"):
        seeded(scenario)


def test_a_time_scaled_replay_keeps_the_log_s_gaps_in_the_new_time(tmp_path: Path) -> None:
    scenario, _ = load_scenario(str(_scenario(tmp_path, REPLAYED, LINE.format(s=1))))
    scaled = time_scaled(scenario, 0.5)
    assert scaled.load.replay is not None and scaled.load.replay.speed == 4.0
    assert scaled.load.duration_s == 15.0
