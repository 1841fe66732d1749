"""The ladder's figures per lane on made-up runs (test_recovery's: 4 arrivals/s, the trigger on
email from 30 s to 40 s, 40 s observed, shoppers retrying once) with a made-up attempt timeline."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.analysis.inputs import Row, RunInputs
from harness.analysis.ladder import ladder_cells, ladder_table_html
from harness.analysis.recorded import RecordedRun, summarise
from harness.analysis.summary import analyse
from harness.records.schema import AttemptTimeline, RunLedger
from harness.report.run_page import write_report
from tests.unit.test_recovery import RATE, _async, _fault, _scenario, _sync

T0 = 1_700_000_000.0


def _cumulative(
    per_arrival: Callable[[float], float], *, step: float = 2.0, until: float = 130.0
) -> list[float]:
    """Attempts made by each 2 s reading from -2 s, at RATE arrivals/s each making per_arrival(t)."""
    counts, total = [0.0], 0.0
    t = -2.0
    while t < until:
        total += sum(per_arrival(t + k / 10) * RATE / 10 for k in range(int(step * 10)) if t + k / 10 >= 0)
        counts.append(round(total, 6))
        t += step
    return counts


def _timeline(sync: list[float] | None = None, async_: list[float] | None = None) -> AttemptTimeline:
    times = [-2.0 + 2.0 * i for i in range(len(sync or async_ or []))]
    attempts: dict[str, dict[str, list[float | None]]] = {}
    if sync is not None:
        attempts["sync"] = {"email": list[float | None](sync)}
    if async_ is not None:
        attempts["async"] = {"email": list[float | None](async_)}
    return AttemptTimeline(times=times, attempts=attempts)


def _storm(t: float) -> float:
    """1 attempt per arrival before the trigger, 5 during it, 6 after it."""
    return 1.0 if t < 30 else 5.0 if t < 40 else 6.0


def _analyse(rows: list[Row], timeline: AttemptTimeline | None, **over: Any) -> dict[str, Any]:
    inputs = RunInputs(
        scenario=_scenario(), rows=tuple(rows), faults=(over.pop("fault", _fault()),), load_end=120.0,
        attempt_timeline=timeline,
    )  # fmt: skip
    return analyse(inputs).to_json()


def test_a_metastable_sync_lanes_rung() -> None:
    summary = _analyse(_sync(lambda t: t < 30, retry=True), _timeline(sync=_cumulative(_storm)))
    rung = summary["ladder"]["sync"]
    assert rung == {
        "policy": "seed",
        "slow_hop": "email",
        "amplification": {"during": 5.0, "after": 6.0, "theory": 6.0},
        "shoppers_failed": 90 * RATE,
        "shoppers": 120 * RATE,
        "recovery_s": None,
        "outcome": "metastable",
    }
    line = next(line for line in summary["reading"] if line.startswith("The sync lane (seed)"))
    assert "5.00 attempts at email per offered arrival during trigger and 6.00 after it" in line
    assert "at most 6: 3 attempts per call x 2 shopper attempts" in line
    assert "360 of 480 shoppers failed (75%); metastable." in line


def test_a_recovering_lanes_rung_has_its_time_to_recover_and_its_failures() -> None:
    rows = _sync(lambda t: not 30 <= t < 43)
    rung = _analyse(rows, _timeline(sync=_cumulative(lambda t: 1.0)))["ladder"]["sync"]
    assert rung["amplification"] == {"during": 1.0, "after": 1.0, "theory": 6.0}
    assert (rung["shoppers_failed"], rung["shoppers"]) == (13 * RATE, 120 * RATE)
    assert (rung["outcome"], rung["recovery_s"]) == ("recovered", 3.0)


def test_without_a_timeline_the_amplification_is_not_known_and_says_why() -> None:
    summary = _analyse(_sync(lambda t: True), None)
    assert summary["ladder"]["sync"]["amplification"] == {"during": None, "after": None, "theory": 6.0}
    line = next(line for line in summary["reading"] if line.startswith("The sync lane (seed)"))
    assert "made not known attempts" in line and "no timeline of attempts" in line


def test_a_window_with_no_arrivals_is_null_never_zero() -> None:
    rows = [r for r in _sync(lambda t: True) if not 30 <= r.intended < 40]
    summary = _analyse(rows, _timeline(sync=_cumulative(lambda t: 0.0 if 30 <= t < 40 else 1.0)))
    amplification = summary["ladder"]["sync"]["amplification"]
    assert amplification["during"] is None and amplification["after"] == 1.0
    line = next(line for line in summary["reading"] if line.startswith("The sync lane (seed)"))
    assert "during: no arrivals were offered in 30.0-40.0 s" in line


def test_the_async_lanes_rung_is_its_workers() -> None:
    rows = _async(lambda t: max(t + 3.0, 70.0) if t >= 30 else t + 3.0)
    rung = _analyse(rows, _timeline(async_=_cumulative(lambda t: 2.0 if 30 <= t < 40 else 1.0)))["ladder"]
    assert rung["async"]["policy"] == "async workers"
    # email is not critical: 12 worker attempts per message x 2 shopper attempts
    assert rung["async"]["amplification"] == {"during": 2.0, "after": 1.0, "theory": 24.0}
    # orders of 30-67 s were fulfilled later than the slowest before the trigger (3 s): the
    # recovery detector's concern, yet every shopper got their order
    assert (rung["async"]["shoppers_failed"], rung["async"]["shoppers"]) == (0, 120 * RATE)
    assert rung["async"]["outcome"] == "recovered"


def test_an_async_shopper_whose_order_failed_or_was_never_seen_fulfilled_failed() -> None:
    rows = [
        dataclasses.replace(r, code=504) if r.kind == "fulfillment" and 30 <= r.intended < 40 else r
        for r in _async(lambda t: t + 3.0)
    ]
    rung = _analyse(rows, None)["ladder"]["async"]
    assert (rung["shoppers_failed"], rung["shoppers"]) == (10 * RATE, 120 * RATE)


def test_judge_takes_the_timeline_from_the_ledger_in_epoch_seconds() -> None:
    rows = _sync(lambda t: t < 30, retry=True)
    timeline = _timeline(sync=_cumulative(_storm))
    ledger = RunLedger(
        t0=T0, started=T0, load_end=T0 + 120, drained_at=None, interrupted=False, drain_cut_short=False,
        async_statuses={}, side_effects={}, drains={}, attempts={},
        attempt_timeline=AttemptTimeline(times=[T0 + t for t in timeline.times], attempts=timeline.attempts),
    )  # fmt: skip
    run = RecordedRun(t0=T0, rows=tuple(rows), faults=(_fault(),))
    judged = summarise(_scenario(), run, ledger).to_json()
    assert judged["ladder"]["sync"] == _analyse(rows, timeline)["ladder"]["sync"]
    assert judged["ladder"]["sync"]["amplification"]["during"] == 5.0


def test_the_report_shows_each_lanes_rung(tmp_path: Path) -> None:
    summary = _analyse(_sync(lambda t: t < 30, retry=True), _timeline(sync=_cumulative(_storm)))
    summary["t0"] = T0
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    page = write_report(tmp_path).read_text()
    assert "<td>email: 5.00, 6.00 (6.00)</td>" in page
    assert "<td>360 of 480</td>" in page
    assert "5.00 attempts at email per offered arrival during trigger" in page  # the reading


def test_the_ladder_table_has_a_row_per_policy_in_order() -> None:
    seed = _analyse(_sync(lambda t: t < 30, retry=True), _timeline(sync=_cumulative(_storm)))["ladder"][
        "sync"
    ]
    calm = _analyse(_sync(lambda t: not 30 <= t < 43), _timeline(sync=_cumulative(lambda t: 1.0)))
    none = {
        **calm["ladder"]["sync"],
        "policy": "none",
        "amplification": {"during": 1.0, "after": None, "theory": 2.0},
    }
    assert ladder_cells(seed) == (
        "seed",
        "email",
        "5.00",
        "6.00",
        "6.00",
        "360 of 480 (75%)",
        "-",
        "metastable",
    )
    assert ladder_cells(none)[2:7] == ("1.00", "not known", "2.00", "52 of 480 (11%)", "3 s")
    page = ladder_table_html([seed, none])
    assert page.index("<td>seed</td>") < page.index("<td>none</td>")
    assert page.count("<tr class=") == 2 and "<tr class=recovered>" in page
