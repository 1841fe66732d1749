"""The benches' target check: a missed target, or a figure that could not be measured, fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from targets_check import Target, report


def test_every_target_is_printed_beside_its_figure_and_a_miss_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    met = Target("ratio", 1.14, ">=", 0.9)
    missed = Target("p99", 1.3, "<", 1, " s")
    assert report([met]) == 0
    assert report([met, missed]) == 1
    out = capsys.readouterr().out
    assert "met     ratio" in out and "MISSED  p99" in out and "1.3 s    < 1 s" in out


def test_a_figure_that_could_not_be_measured_misses_its_target() -> None:
    assert not Target("p99", float("nan"), "<", 1).met
    assert report([Target("p99", float("nan"), ">=", 0)]) == 1


def test_an_unknown_comparison_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="op '=~'"):
        Target("x", 1, "=~", 1)
