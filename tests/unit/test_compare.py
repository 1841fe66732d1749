"""``doorbuster compare BASE NEW`` on made-up run directories: a clear regression, a clear
non-regression and a change the intervals can not decide, each from the runs' files alone."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.compare import decide, parse_bound
from harness.analysis.estimates import Estimate
from harness.cli.main import main
from model.errors import ConfigError, ExitCode
from tests.unit.run_dirs import steady_records, steady_scenario, write_run_dir

COUNT, SPACING_S = 3000, 0.02  # 50 checkouts a second for 60 s
SCENARIO = steady_scenario("compare-made-up", rate=50, expectations=["sync.checkout.p99 < 400ms"])


def _spread(i: int) -> float:
    """Latencies spread over [0.2, 0.3) s in no particular order."""
    return 0.2 + 0.1 * ((i * 7919) % COUNT) / COUNT


def _run(root: Path, name: str, *, slower: float = 1.0, error_every: int | None = 50) -> Path:
    records = steady_records(
        "sync", COUNT, SPACING_S, lambda i: _spread(i) * slower,
        lambda i: error_every is not None and i % error_every == 0,
    )  # fmt: skip
    return write_run_dir(root / name, SCENARIO, records)


def _compare(tmp_path: Path, *args: str) -> int:
    no_stack = tmp_path / "state-is-a-file"
    no_stack.write_text("")
    return main(["--state-dir", str(no_stack), "compare", *args])


def _figures(printed: str) -> dict[tuple[str, str], str]:
    data = json.loads(printed)
    return {(f["lane"], f["figure"]): f["change"] for f in data["figures"]}


def test_decide_regressed_only_when_the_intervals_say_so() -> None:
    base = Estimate(0.40, 0.38, 0.41, 800)
    latency = {"higher_is_worse": True, "stat": "p99", "figure": "p99 latency"}
    assert decide(base, Estimate(0.55, 0.50, 0.60, 800), 0.1, **latency)[0] == "regressed"  # type: ignore[arg-type]
    assert decide(base, Estimate(0.36, 0.30, 0.41, 800), 0.1, **latency)[0] == "within bound"  # type: ignore[arg-type]
    assert decide(base, Estimate(0.43, 0.40, 0.46, 800), 0.1, **latency)[0] == "undetermined"  # type: ignore[arg-type]
    # A p99 of 50 samples has no upper bound: no "within bound" can be shown.
    change, reason = decide(base, Estimate(0.3, 0.2, math.inf, 50), 0.1, **latency)  # type: ignore[arg-type]
    assert change == "undetermined" and reason is not None and "368" in reason and "NEW" in reason
    # Throughput: lower is worse.
    rate = Estimate(50.0, 48.0, 52.0, 3000)
    assert decide(rate, Estimate(40.0, 38.0, 42.0, 2400), 0.1, higher_is_worse=False)[0] == "regressed"
    assert decide(rate, Estimate(50.0, 48.0, 52.0, 3000), 0.1, higher_is_worse=False)[0] == "within bound"
    assert decide(rate, Estimate(45.0, 43.0, 47.0, 2700), 0.1, higher_is_worse=False)[0] == "undetermined"
    # No errors in BASE: no error rate is shown within a relative bound of none, nor above it.
    none = Estimate(0.0, 0.0, 0.037, 100)
    change, reason = decide(none, none, 0.1, higher_is_worse=True, figure="error rate")
    assert (
        change == "undetermined"
        and reason == "BASE's error rate was 0: no error rate can be shown to be within 10% of it"
    )
    no_data = decide(Estimate(math.nan, -math.inf, math.inf, 0), rate, 0.1, higher_is_worse=False)
    assert no_data == ("undetermined", "BASE has no data for the figure")


def test_a_clear_regression_is_exit_1_naming_the_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = _run(tmp_path, "base"), _run(tmp_path, "new", slower=2.0)
    assert _compare(tmp_path, str(base), str(new), "--json") == ExitCode.EXPECTATION_FAILED
    captured = capsys.readouterr()
    figures = _figures(captured.out)
    for stat in ("p50", "p95", "p99"):
        assert figures[("sync", f"{stat} latency")] == "regressed"
    assert figures[("sync", "throughput")] == "within bound"  # the same checkouts succeeded
    assert "3 figure(s) regressed beyond 10%: sync p50 latency, sync p95 latency, sync p99 latency" in (
        captured.err.replace("\n", "")
    )
    verdicts = json.loads(captured.out)["verdicts"]
    assert [(v["base"]["outcome"], v["new"]["outcome"]) for v in verdicts] == [("pass", "fail")]


def test_a_clear_non_regression_is_exit_0_every_figure_within_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = _run(tmp_path, "base"), _run(tmp_path, "new", error_every=None)
    assert _compare(tmp_path, str(base), str(new)) == ExitCode.OK
    out = capsys.readouterr().out
    assert "no figure regressed beyond 10%" in out and "UNDETERMINED" not in out
    assert _compare(tmp_path, str(base), str(new), "--json") == ExitCode.OK
    assert set(_figures(capsys.readouterr().out).values()) == {"within bound"}


def test_a_change_the_intervals_can_not_decide_is_undetermined_not_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every latency exactly 10% higher: each interval straddles BASE's x 1.1."""
    base, new = _run(tmp_path, "base"), _run(tmp_path, "new", slower=1.1)
    assert _compare(tmp_path, str(base), str(new), "--max-regression", "10%") == ExitCode.OK
    out = capsys.readouterr().out.replace("\n", " ")
    assert "no figure shown to regress beyond 10%" in out and "undetermined" in out
    assert _compare(tmp_path, str(base), str(new), "--json") == ExitCode.OK
    figures = _figures(capsys.readouterr().out)
    assert [figures[("sync", f"{s} latency")] for s in ("p50", "p95", "p99")] == ["undetermined"] * 3
    # A larger bound decides it.
    assert _compare(tmp_path, str(base), str(new), "--max-regression", "30%", "--json") == ExitCode.OK
    figures = _figures(capsys.readouterr().out)
    assert [figures[("sync", f"{s} latency")] for s in ("p50", "p95", "p99")] == ["within bound"] * 3


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in ("br", "meta"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"</{tag}> closes nothing open"

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "td":
            self.cells.append(data.strip())


def test_the_page_shows_both_runs_figures_and_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = _run(tmp_path, "base"), _run(tmp_path, "new", slower=2.0)
    page = tmp_path / "compare.html"
    assert _compare(tmp_path, str(base), str(new), "--html", str(page)) == ExitCode.EXPECTATION_FAILED
    assert f"page: {page}" in capsys.readouterr().out
    parsed = _Page()
    parsed.feed(page.read_text())
    assert parsed.open == []
    cells = parsed.cells
    assert cells.count("regressed") == 3 and "sync.checkout.p99 < 400ms" in cells
    assert "PASS" in cells and "FAIL" in cells
    assert any(re.fullmatch(r"0\.\d{3}s \[0\.\d{3}s, 0\.\d{3}s\] n=3000", c) for c in cells)
    # Without --html, the page goes into NEW's directory.
    assert _compare(tmp_path, str(base), str(new)) == ExitCode.EXPECTATION_FAILED
    assert "regressed" in (new / "compare.html").read_text()


def test_runs_of_different_scenarios_are_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _run(tmp_path, "base")
    other = steady_scenario("another", rate=50, expectations=["sync.checkout.p99 < 400ms"])
    new = write_run_dir(
        tmp_path / "other", other, steady_records("sync", COUNT, SPACING_S, _spread, lambda i: False)
    )
    assert _compare(tmp_path, str(base), str(new)) == ExitCode.USAGE
    err = capsys.readouterr().err.replace("\n", "")
    assert "scenario: compare-made-up in BASE, another in NEW" in err and "--force" in err
    assert _compare(tmp_path, str(base), str(new), "--force") == ExitCode.OK
    assert "another in NEW" in capsys.readouterr().out.replace("\n", "")


def test_bad_run_directories_and_options_are_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _run(tmp_path, "base")
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_log = _run(tmp_path, "bad-log")
    with (bad_log / "requests.jsonl").open("a") as fh:
        fh.write("{not json\n")
    cases = [
        ([str(base), str(tmp_path / "nowhere")], "nowhere: not a directory"),
        ([str(base), str(empty)], f"{empty / 'ledger.json'}: no such file"),
        ([str(bad_log), str(base)], f"{bad_log / 'requests.jsonl'}: line {COUNT + 1}"),
        ([str(base), str(base), "--max-regression", "ten"], "--max-regression 'ten'"),
        ([str(base), str(base), "--max-regression", "150%"], "under 100%"),
        ([str(base), str(base), "--html", str(tmp_path / "no" / "p.html")], "--html"),
    ]
    for args, message in cases:
        assert _compare(tmp_path, *args) == ExitCode.USAGE, args
        err = capsys.readouterr().err.replace("\n", "")
        assert message in err and "Traceback" not in err, (args, err)


def test_parse_bound_refuses_what_is_not_a_fraction_below_one() -> None:
    assert parse_bound(" 5% ") == 0.05
    for text in ("", "nan", "-1%", "1", "inf%"):
        with pytest.raises(ConfigError):
            parse_bound(text)
