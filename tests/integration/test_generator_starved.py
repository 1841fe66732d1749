"""A load generator starved of CPU is named, not the system: one core and a rate it can not
send make the verdict undetermined, naming the generator with its figures; the same endpoint
at a rate the generator can send passes.

The endpoint is bench/trivial (Go, answers at once) pinned to one core; `doorbuster run`, and
with it Locust, is pinned to the other with taskset, as issue 23's reproduction has it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from model.errors import ExitCode
from tests.integration.conftest import RunningStack

EXPECTATION = "sync.checkout.p99 < 50ms at steady"
SCENARIO = """
name: {name}
load:
  lanes: [sync]
  stages: [{{name: steady, duration: {seconds}s, rate: {rate}}}]
  impatient: {{timeout: 10s}}
expectations:
  - "{expectation}"
drain_timeout: 10s
"""


def _run(
    stack: RunningStack, tmp_path: Path, url: str, *, rate: int, seconds: int
) -> tuple[int, dict[str, Any]]:
    scenario = tmp_path / f"at-{rate}.yaml"
    scenario.write_text(
        SCENARIO.format(name=f"at-{rate}", seconds=seconds, rate=rate, expectation=EXPECTATION)
    )
    out = tmp_path / f"run-{rate}"
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "harness.cli.main", "--state-dir", str(stack.state_dir),
           "run", str(scenario), "--target", f"sync={url}", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 240)
    assert (out / "summary.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads((out / "summary.json").read_text())


def test_a_starved_generator_is_named_and_the_verdict_undetermined(
    stack: RunningStack, tmp_path: Path, trivial: str
) -> None:
    code, summary = _run(stack, tmp_path, trivial, rate=5000, seconds=10)
    verdict = next(v for v in summary["verdicts"] if v["expectation"] == EXPECTATION)
    assert verdict["outcome"] == "undetermined", verdict
    assert "the load generator fell behind" in verdict["reason"]
    assert "--workers N" in verdict["reason"]
    assert code == ExitCode.EXPECTATION_FAILED  # undecided is not a pass
    steady = next(w for w in summary["generator"]["windows"] if w["name"] == "steady")
    assert steady["behind"], steady
    assert steady["send_lag_p99_ms"] > 25.0
    assert verdict["evidence"]["generator"]["send_lag_p99_ms"] == steady["send_lag_p99_ms"]
    worker = summary["generator"]["workers"]["0"]
    assert worker["due"] == 50_000  # the schedule's: 5,000/s for 10 s, whatever was sent
    assert worker["sent"] + worker["dropped"] + worker["never_sent"] <= worker["due"]
    # What was never sent is not counted as the system's: every request judged was sent.
    assert summary["lanes"]["sync"]["requests"] == worker["sent"]
    assert any(line.startswith("The load generator fell behind its schedule") for line in summary["reading"])


def test_the_same_endpoint_at_a_rate_the_generator_can_send_passes(
    stack: RunningStack, tmp_path: Path, trivial: str
) -> None:
    code, summary = _run(stack, tmp_path, trivial, rate=200, seconds=10)
    verdict = next(v for v in summary["verdicts"] if v["expectation"] == EXPECTATION)
    assert verdict["outcome"] == "pass", verdict
    assert code == ExitCode.OK
    assert summary["generator"]["workers"]["0"]["never_sent"] == 0
    assert all(w["behind"] == [] for w in summary["generator"]["windows"])
