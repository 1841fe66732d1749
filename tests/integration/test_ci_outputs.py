"""The CI outputs on real runs: ``doorbuster run --junit`` and ``doorbuster compare`` of a
run against one whose sync lane's payment hop was made 2 s slower throughout."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.records.verdicts import outcome_of
from model.errors import ExitCode
from tests.integration.conftest import RunningStack

GATE = """
name: ci-gate
load:
  stages:
    - {name: steady, duration: 20s, rate: 5}
  poll: {initial: 0.5s, max: 2s, give_up: 60s}
expectations:
  - "async.checkout.p50 < 0.8s"
  - "sync.checkout.p50 < 0.1s"
  - "async.checkout.p99 < 1.5s"
drain_timeout: 60s
"""
# The same experiment with payment 2 s slow on the sync lane for the whole load.
SLOWER = GATE.replace(
    "expectations:",
    "chaos:\n  - {name: payment-slow, at: 0s, for: 20s, dependency: payment, type: latency, lanes: sync,\n"
    "     attributes: {latency: 2000}}\nexpectations:",
)


def _cli(stack: RunningStack, *args: str) -> int:
    return main(["--state-dir", str(stack.state_dir), *args])


def _run_with_junit(stack: RunningStack, tmp_path: Path, name: str, text: str) -> tuple[Path, dict[str, Any]]:
    scenario = tmp_path / f"{name}.yaml"
    scenario.write_text(text)
    out, junit = tmp_path / name, tmp_path / f"{name}.xml"
    # "sync.checkout.p50 < 0.1s" fails on the seed's chain: exit 1, and the XML is written.
    assert _cli(stack, "run", str(scenario), "--out", str(out), "--junit", str(junit)) == 1
    summary = json.loads((out / "summary.json").read_text())
    verdicts = summary["verdicts"]
    (suite,) = ET.fromstring(junit.read_bytes())
    outcomes = [outcome_of(v) for v in verdicts]
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        "ci-gate", str(len(verdicts)), str(outcomes.count("fail")), str(outcomes.count("undetermined"))
    )  # fmt: skip
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [v["expectation"] for v in verdicts]
    for case, verdict, outcome in zip(cases, verdicts, outcomes, strict=True):
        failure, skipped = case.find("failure"), case.find("skipped")
        assert (failure is not None, skipped is not None) == (outcome == "fail", outcome == "undetermined")
        if failure is not None:
            assert failure.get("message") == verdict["observed"]
        assert f"observed: {verdict['observed']}" in (case.findtext("system-out") or "")
    return out, summary


@pytest.mark.integration
def test_junit_of_real_runs_and_compare_finds_the_slower_sync_lane(
    stack: RunningStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, base_summary = _run_with_junit(stack, tmp_path, "base", GATE)
    new, _ = _run_with_junit(stack, tmp_path, "new", SLOWER)
    capsys.readouterr()

    no_stack = ["--state-dir", str(tmp_path / "no-stack")]
    assert main([*no_stack, "compare", str(base), str(new), "--json"]) == ExitCode.EXPECTATION_FAILED
    captured = capsys.readouterr()
    figures = {(f["lane"], f["figure"]): f for f in json.loads(captured.out)["figures"]}
    assert figures[("sync", "p50 latency")]["change"] == "regressed", figures[("sync", "p50 latency")]
    assert figures[("sync", "p50 latency")]["base"]["n"] == base_summary["lanes"]["sync"]["requests"]
    assert "sync p50 latency" in captured.err.replace("\n", "")
    assert (new / "compare.html").exists()

    # A run against itself regresses nothing.
    assert main([*no_stack, "compare", str(base), str(base), "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["regressed"] == 0
