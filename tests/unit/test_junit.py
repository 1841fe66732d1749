"""JUnit XML from a run's verdicts: ``doorbuster judge RUN_DIR --junit FILE`` on a made-up run
(the same writer as ``doorbuster run --junit``), read back with xml.etree."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.records.summary import Summary
from harness.report.junit import junit_xml
from model.errors import ExitCode
from tests.unit.run_dirs import steady_records, steady_scenario, write_run_dir
from tests.unit.summaries import summary_json

EXPECTATIONS = (
    "sync.error_rate < 10%",  # 5% failed of 600: Wilson's interval is under 10%
    "sync.checkout.p50 < 100ms",  # every checkout took 200 ms or more
    "sync.error_rate < 5%",  # 5% failed: the interval straddles 5%
)
# What each element of the JUnit shape CI tools read may hold, in order (Jenkins' junit-10.xsd).
CHILDREN = {
    "testsuites": ("testsuite",),
    "testsuite": ("properties", "testcase", "system-out", "system-err"),
    "testcase": ("skipped", "error", "failure", "system-out", "system-err"),
}
REQUIRED = {"testsuites": (), "testsuite": ("name", "tests"), "testcase": ("name", "classname")}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    scenario = steady_scenario("junit-made-up", expectations=EXPECTATIONS)
    records = steady_records("sync", 600, 0.1, lambda i: 0.2 + (i % 7) * 0.01, lambda i: i % 20 == 0)
    return write_run_dir(tmp_path / "run", scenario, records)


def _main(tmp_path: Path, *args: str) -> int:
    no_stack = tmp_path / "state-is-a-file"
    no_stack.write_text("")
    return main(["--state-dir", str(no_stack), *args])


def _check_shape(element: ET.Element) -> None:
    """The document is testsuites > testsuite > testcase, each child in its allowed order."""
    allowed = CHILDREN.get(element.tag, ())
    order = [allowed.index(child.tag) for child in element if child.tag in allowed]
    assert [child.tag for child in element if child.tag not in allowed] == [] or not allowed
    assert order == sorted(order), f"{element.tag}'s children out of order"
    for name in REQUIRED.get(element.tag, ()):
        assert element.get(name), f"{element.tag} lacks {name}"
    for child in element:
        _check_shape(child)


def test_judge_junit_has_a_case_per_expectation_with_failure_skip_and_evidence(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "verdicts.xml"
    assert _main(tmp_path, "judge", str(run_dir), "--junit", str(junit)) == ExitCode.EXPECTATION_FAILED
    verdicts = json.loads((run_dir / "summary.json").read_text())["verdicts"]
    assert [v["outcome"] for v in verdicts] == ["pass", "fail", "undetermined"]

    root = ET.fromstring(junit.read_bytes())
    _check_shape(root)
    assert root.tag == "testsuites"
    (suite,) = root
    for element in (root, suite):
        assert {k: element.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
            "tests": "3", "failures": "1", "errors": "0", "skipped": "1"
        }  # fmt: skip
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("junit-made-up", text) for text in EXPECTATIONS
    ]
    passed, failed, undetermined = cases
    assert passed.find("failure") is None and passed.find("skipped") is None
    failure = failed.find("failure")
    assert failure is not None and failure.get("message") == verdicts[1]["observed"]
    assert failed.find("skipped") is None
    skipped = undetermined.find("skipped")
    assert skipped is not None and verdicts[2]["reason"] in (skipped.get("message") or "")
    assert undetermined.find("failure") is None
    for case, verdict in zip(cases, verdicts, strict=True):
        out = case.findtext("system-out") or ""
        assert f"observed: {verdict['observed']}" in out
        estimate = verdict["evidence"]["estimate"]
        assert f"estimate 95% interval: [{estimate['low']:g}, {estimate['high']:g}]" in out
        assert "estimate n: 600" in out
    assert verdicts[2]["reason"] in (undetermined.findtext("system-out") or "")
    assert f"junit: {junit}" in capsys.readouterr().out


def test_junit_xml_escapes_what_xml_can_not_hold_and_reports_an_interrupted_run() -> None:
    summary = Summary.from_json(summary_json(
        scenario="odd <&> name",
        t0=0.0,
        interrupted=True,
        duration_s=12.5,
        passed=False,
        verdicts=[
            {"expectation": 'sync.checkout.p99 < 1s & "more"', "outcome": "undetermined",
             "observed": "undetermined", "reason": "too few samples\x00 <n=3>"},
            {"expectation": "no lost orders", "passed": False, "observed": "2 lost of 9 accepted"},
        ],
    ))  # fmt: skip
    root = ET.fromstring(junit_xml(summary))
    _check_shape(root)
    (suite,) = root
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "3", "1", "1", "1"
    )  # fmt: skip
    assert suite.get("name") == "odd <&> name" and suite.get("time") == "12.500"
    first, second, interrupted = suite.findall("testcase")
    assert first.get("name") == 'sync.checkout.p99 < 1s & "more"'
    assert "too few samples\ufffd <n=3>" in (first.find("skipped").get("message") or "")  # type: ignore[union-attr]
    assert second.find("failure").get("message") == "2 lost of 9 accepted"  # type: ignore[union-attr]
    assert interrupted.find("error") is not None


def test_a_junit_path_in_no_directory_is_refused_before_judging(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _main(tmp_path, "judge", str(run_dir), "--junit", str(tmp_path / "missing" / "v.xml"))
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "--junit" in err and "missing" in err and "Traceback" not in err


def test_a_junit_file_that_can_not_be_written_is_exit_2_and_the_summary_and_report_stay(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Linux's /dev/full fails every write: the project runs on Debian/Ubuntu, so never a skip.
    assert Path("/dev/full").exists(), "this test needs Linux's /dev/full to fail a write"
    assert _main(tmp_path, "judge", str(run_dir), "--junit", "/dev/full") == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "ConfigError" in err and "/dev/full" in err and "Traceback" not in err
    assert json.loads((run_dir / "summary.json").read_text())["verdicts"]
    assert (run_dir / "report.html").exists()


def test_run_refuses_a_junit_path_in_no_directory_before_it_starts_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _main(tmp_path, "run", "black-friday", "--junit", str(tmp_path / "nowhere" / "v.xml"))
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "--junit" in err and "nowhere" in err and "Traceback" not in err
