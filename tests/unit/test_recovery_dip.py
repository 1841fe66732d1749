"""Did the trigger push a lane below the recovery detector's bar?  The same made-up runs as
test_recovery: 4 arrivals/s, a 30 s baseline, the trigger from 30 s to 40 s, 40 s observed."""

from __future__ import annotations

from harness.analysis.inputs import Row
from tests.unit.test_recovery import RATE, _async, _fault, _run, _sync


def test_a_lane_whose_rate_never_drops_did_not_dip() -> None:
    sync = _run(_sync(lambda t: True))["metastability"]["sync"]
    assert sync["dipped"] is False and sync["dip_reason"] is None
    assert sync["outcome"] == "recovered" and sync["recovery_s"] == 0


def test_a_lane_that_drops_during_the_fault_and_comes_back_dipped() -> None:
    sync = _run(_sync(lambda t: not 30 <= t < 40))["metastability"]["sync"]
    assert sync["dipped"] is True and sync["dip_reason"] is None
    assert sync["outcome"] == "recovered"


def test_a_lane_that_drops_only_after_the_removal_dipped() -> None:
    sync = _run(_sync(lambda t: not 45 <= t < 55))["metastability"]["sync"]
    assert sync["dipped"] is True


def test_the_dip_uses_the_detectors_smoothing_windows() -> None:
    # One bad second of five leaves a 5 s window at 16/20 = 0.8, not below 80% of 1.0: no dip.
    assert _run(_sync(lambda t: not 33 <= t < 34))["metastability"]["sync"]["dipped"] is False
    # Two bad seconds leave 12/20 = 0.6: a dip.
    assert _run(_sync(lambda t: not 33 <= t < 35))["metastability"]["sync"]["dipped"] is True


def test_a_lane_metastable_from_the_trigger_on_dipped() -> None:
    sync = _run(_sync(lambda t: t < 30, retry=True))["metastability"]["sync"]
    assert sync["outcome"] == "metastable" and sync["dipped"] is True


def test_no_arrivals_while_the_trigger_was_applied_can_not_tell() -> None:
    rows = [r for r in _sync(lambda t: True) if not 30 <= r.intended < 40]
    sync = _run(rows)["metastability"]["sync"]
    assert sync["dipped"] is None
    assert sync["dip_reason"] == "no sync arrivals were offered while trigger was applied"


def test_no_baseline_can_not_tell() -> None:
    rows = [r for r in _sync(lambda t: True) if r.intended >= 30]
    sync = _run(rows)["metastability"]["sync"]
    assert sync["dipped"] is None and sync["dip_reason"] == "no arrivals before trigger to compare with"


def test_a_fault_never_applied_can_not_tell() -> None:
    sync = _run(_sync(lambda t: True), fault=_fault(applied=False))["metastability"]["sync"]
    assert sync["dipped"] is None and "never applied" in sync["dip_reason"]


def test_no_dip_in_a_window_cut_short_can_not_tell_but_a_dip_seen_is_a_dip() -> None:
    # the load ends at 60 s: 30 of the 50 s from the application to the window's end
    clean = _run(_sync(lambda t: True, until=60), load_end=60)["metastability"]["sync"]
    assert clean["dipped"] is None and "30 s from the application of trigger" in clean["dip_reason"]
    bad = _run(_sync(lambda t: not 30 <= t < 40, until=60), load_end=60)["metastability"]["sync"]
    assert bad["dipped"] is True


def test_async_fulfilment_stalling_behind_fine_202s_dipped() -> None:
    stalled = _run(_async(lambda t: max(t + 3.0, 70.0) if t >= 30 else t + 3.0))
    assert stalled["metastability"]["async"]["dipped"] is True
    steady = _run(_async(lambda t: t + 3.0))
    assert steady["metastability"]["async"]["dipped"] is False


def test_a_failed_first_attempt_rescued_by_the_shoppers_retry_is_no_dip() -> None:
    rows = _sync(lambda t: True)
    # during the trigger every first attempt timed out and the impatient retry got its 200
    rows = [
        r
        for i, t in enumerate(x / RATE for x in range(120 * RATE))
        for r in (
            [Row(t, t + 5, "sync", "checkout", 0, 0, ""), Row(t, t + 6, "sync", "checkout", 200, 1, f"s{i}")]
            if 30 <= t < 40
            else [rows[i]]
        )
    ]
    assert _run(rows)["metastability"]["sync"]["dipped"] is False


def test_a_removal_acknowledged_late_leaves_no_part_bin_undecided() -> None:
    # Applied for 10.3 s: the window from the application is 50.3 s, 50 whole bins; the
    # detector judges whole bins, so a lane that never dropped did not dip.
    sync = _run(_sync(lambda t: True), fault=_fault(end=40.3))["metastability"]["sync"]
    assert sync["dipped"] is False and sync["dip_reason"] is None
