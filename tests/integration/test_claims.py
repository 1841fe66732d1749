"""The claims the shipped scenarios make, each a real ``doorbuster run`` at a time scale.

A run at ``--time-scale S`` is the same experiment in S times its time (harness.config.timescale): the
naive sync lane of retry-storm must still be metastable, the fixed one must recover, the async
lane's fulfilment must recover in both, and black-friday's headline verdicts must pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.config.scenarios import load_scenario
from harness.run.judge import judge_run
from model.errors import ExitCode

# The smallest scales tried whose outcomes matched the scale-1 runs on a 2-core machine; at
# 0.25 retry-storm's async workers fell behind at 24 arrivals/s and its fulfilment never
# recovered: the machine, not the experiment, set the pace (docs/running/scenarios.md, "Time scale").
STORM_SCALE = 0.33
# At 0.33 black-friday's "async.checkout.p99 < 0.33s" was undetermined in one run of three on
# the shared machine ([0.233s, 0.361s]): a process's scheduling delays do not shrink with it.
BLACK_FRIDAY_SCALE = 0.5


def _run(tmp_path: Path, scenario: str, base_port: int, scale: float) -> tuple[int, dict[str, Any]]:
    out, state = tmp_path / "run", tmp_path / "state"
    cli = ["--state-dir", str(state)]
    try:
        code = main([*cli, "run", scenario, "--out", str(out), "--base-port", str(base_port),
                     "--toxiproxy-port", str(base_port + 474), "--time-scale", str(scale)])  # fmt: skip
    finally:
        main([*cli, "down"])
    return code, json.loads((out / "summary.json").read_text())


def _outcomes(summary: dict[str, Any]) -> dict[str, str]:
    return {v["expectation"]: v["outcome"] for v in summary["verdicts"]}


def _scaled(summary: dict[str, Any], scale: float) -> None:
    assert summary["time_scale"] == scale
    for lane in summary["metastability"].values():
        assert lane["evidence"]["resolution_s"] == scale


@pytest.mark.parametrize(
    ("scenario", "sync_outcome"), [("retry-storm", "metastable"), ("retry-storm-fixed", "recovered")]
)
def test_retry_storm_claims(tmp_path: Path, scenario: str, sync_outcome: str) -> None:
    port = 31000 if scenario == "retry-storm" else 31600
    code, summary = _run(tmp_path, scenario, port, STORM_SCALE)
    _scaled(summary, STORM_SCALE)
    metastability = summary["metastability"]
    # The ladder's figures: attempts at email per offered arrival while it was slow, at most what
    # 3 attempts per call x 2 shopper attempts allow (above 1 for the seed's retries), and judge
    # recomputes them from the run's files.
    sync = summary["ladder"]["sync"]
    assert (sync["policy"], sync["slow_hop"], sync["amplification"]["theory"]) == ("seed", "email", 6.0)
    during = sync["amplification"]["during"]
    assert during is not None and during <= 6.0, sync
    if scenario == "retry-storm":
        assert during > 1.0 and metastability["sync"]["dipped"] is True, sync
        assert 0 < sync["shoppers_failed"] < sync["shoppers"], sync
    judged = judge_run(tmp_path / "run", write=False).to_json()
    assert judged["ladder"] == summary["ladder"]
    assert judged["metastability"] == summary["metastability"]
    assert metastability["sync"]["outcome"] == sync_outcome, metastability["sync"]["reason"]
    assert metastability["async"]["outcome"] == "recovered", metastability["async"]["reason"]
    assert all(outcome == "pass" for outcome in _outcomes(summary).values()), _outcomes(summary)
    assert len(summary["verdicts"]) == 4
    assert code == ExitCode.OK


def test_black_friday_headline_verdicts(tmp_path: Path) -> None:
    code, summary = _run(tmp_path, "black-friday", 32200, BLACK_FRIDAY_SCALE)
    _scaled(summary, BLACK_FRIDAY_SCALE)
    outcomes = _outcomes(summary)
    assert all(outcome == "pass" for outcome in outcomes.values()), outcomes
    assert len(outcomes) == len(load_scenario("black-friday")[0].expectations)
    assert code == ExitCode.OK
