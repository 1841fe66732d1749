"""``make test-lanes``' two lanes: every test module runs in exactly one of them."""

from __future__ import annotations

from pathlib import Path

from tests.lanes import LANES, LOAD_MODULES, lane_arguments, module_seconds

ROOT = Path(__file__).resolve().parent.parent.parent


def test_every_load_module_exists_and_is_listed_once() -> None:
    assert len(set(LOAD_MODULES)) == len(LOAD_MODULES)
    missing = [m for m in LOAD_MODULES if not (ROOT / m).is_file()]
    assert missing == [], f"listed in tests/lanes.py but not in the repository: {missing}"


def test_the_rest_lane_runs_everything_the_load_lane_does_not() -> None:
    load, rest = LANES
    assert load.paths == LOAD_MODULES and load.ignores == ()
    assert rest.paths == () and set(rest.ignores) == set(LOAD_MODULES)
    args = lane_arguments(rest, basetemp=Path("/tmp/x"))
    assert [a for a in args if a.startswith("--ignore=")] == [f"--ignore={m}" for m in LOAD_MODULES]
    # no path given: pytest's testpaths (tests, model, harness, targets, chaosdoorbuster) apply
    assert not [a for a in args if a.startswith(("tests", "model", "harness", "targets"))]


def test_a_lane_is_given_its_own_temporary_directory_and_the_extra_arguments() -> None:
    load = LANES[0]
    args = lane_arguments(load, basetemp=Path("/tmp/lanes/load/tmp"), extra=["-x"])
    assert "--basetemp=/tmp/lanes/load/tmp" in args
    assert args[-len(LOAD_MODULES) - 1 :] == ["-x", *LOAD_MODULES]


def test_each_modules_seconds_are_summed_from_a_lanes_junit_file(tmp_path: Path) -> None:
    junit = tmp_path / "load.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.integration.test_sweep" name="a" time="250.5"/>'
        '<testcase classname="tests.integration.test_claims" name="b" time="100"/>'
        '<testcase classname="tests.integration.test_claims" name="c" time="50.25"/>'
        "</testsuite></testsuites>"
    )
    assert module_seconds(junit) == {
        "tests.integration.test_sweep": 250.5,
        "tests.integration.test_claims": 150.25,
    }
