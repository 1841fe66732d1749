"""A generator worker lost mid-run: found from its shard and its health samples, its arrivals
without a record counted from the schedule, the verdicts over windows from then on made
undetermined naming it, and all of it decided again from the run's files alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from harness.analysis.generator import LOST_WORKER, GeneratorWindow, gated
from harness.analysis.inputs import Row, RunInputs
from harness.analysis.lost_workers import SILENT_S, lost_workers, unrecorded_arrivals
from harness.analysis.recorded import judged_summary
from harness.analysis.summary import analyse
from harness.load.schedule import planned_arrivals
from harness.records.generator import GeneratorSample
from harness.records.run_dir import RunDir
from harness.records.schema import RequestRecord
from harness.records.shards import ShardState
from harness.records.summary import LostWorker, Summary
from harness.records.verdicts import Verdict
from tests.unit.run_dirs import T0, steady_scenario, write_run_dir
from tests.unit.scenarios import made_up_scenario

# One steady stage, 10 arrivals a second for 60 s, split across two workers: 300 each.
SCENARIO = steady_scenario(rate=10, seconds=60, expectations=["sync.checkout.p99 < 1s at steady"])


def _arrivals(segment: int, segments: int) -> Iterator[tuple[float, tuple[str, ...]]]:
    return planned_arrivals(SCENARIO.load, seed=0, segment=segment, segments=segments)


def _sample(worker: str, t: float, *, stopped: bool = False) -> GeneratorSample:
    return GeneratorSample(worker=worker, t=t, window_s=1.0, sends=5, send_lag_p99_s=0.001,
                           send_lag_max_s=0.002, loop_lag_max_s=0.001, cpu_share=0.2, due=int(5 * t),
                           sent=int(5 * t), dropped=0, never_sent=0, stopped=stopped)  # fmt: skip


def _samples(worker: str, until: float, *, stopped: bool) -> list[GeneratorSample]:
    times = [float(t) for t in range(1, int(until) + 1)]
    return [_sample(worker, t, stopped=stopped and t == times[-1]) for t in times]


def _rows(segment: int, until: float) -> list[Row]:
    """A checkout for each of the segment's arrivals intended before ``until``."""
    return [
        Row(offset, offset + 0.05, lane, "checkout", 200, 0, f"{segment}-{offset}", offset + 0.001)
        for offset, lanes in _arrivals(segment, 2)
        if offset < until
        for lane in lanes
    ]


def test_a_worker_whose_shard_was_never_closed_and_whose_samples_stop_is_lost() -> None:
    samples = [*_samples("0", 60, stopped=True), *_samples("1", 20, stopped=False)]
    shards = [ShardState(worker="0", closed=True), ShardState(worker="1", closed=False, torn_lines=1)]
    rows = [*_rows(0, 61), *_rows(1, 19.5)]
    lost = lost_workers(samples, shards, rows, load_end=60.0, arrivals=_arrivals)
    # Its arrivals are 0.1, 0.3, ... 59.9: 97 recorded before 19.5 s, 203 with no record.
    assert lost == (
        LostWorker(worker="1", lost_at_s=19.5, arrivals_without_record=203, shard_closed=False, torn_lines=1),
    )


def test_a_worker_gone_silent_while_another_goes_on_is_lost_without_its_shard() -> None:
    # Its shard never reached the run directory (its host gone): its samples say it.
    samples = [*_samples("0", 60, stopped=True), *_samples("1", 30, stopped=False)]
    rows = [*_rows(0, 61), *_rows(1, 30.05)]
    lost = lost_workers(
        samples, [ShardState(worker="0", closed=True)], rows, load_end=60.0, arrivals=_arrivals
    )
    assert [(w.worker, w.lost_at_s, w.arrivals_without_record, w.shard_closed) for w in lost] == [
        ("1", 30.0, 150, False)  # its last sample came before its first arrival without a record
    ]


def test_workers_that_ran_to_the_end_are_not_lost() -> None:
    rows = [*_rows(0, 61), *_rows(1, 61)]
    samples = [*_samples("0", 60, stopped=True), *_samples("1", 58, stopped=True)]
    closed = [ShardState(worker="0", closed=True), ShardState(worker="1", closed=True)]
    assert lost_workers(samples, closed, rows, load_end=60.0, arrivals=_arrivals) == ()
    # Slow to close its shard, but it took its last sample and every arrival of its is recorded.
    slow = [closed[0], ShardState(worker="1", closed=False)]
    assert lost_workers(samples, slow, rows, load_end=60.0, arrivals=_arrivals) == ()
    # Samples that stop less than SILENT_S early are a last report not yet in, not a loss.
    late = [*_samples("0", 60, stopped=True), *_samples("1", 60 - SILENT_S + 1, stopped=False)]
    assert lost_workers(late, closed, rows, load_end=60.0, arrivals=_arrivals) == ()


def test_a_single_process_run_has_no_worker_to_lose() -> None:
    samples = _samples("0", 20, stopped=False)
    assert lost_workers(samples, [], [], load_end=60.0, arrivals=_arrivals) == ()


def test_an_arrival_counts_as_recorded_once_at_its_intended_start_to_the_tick() -> None:
    schedule = [(1.0, ("sync", "async")), (1.0001, ("sync",)), (2.0, ("sync",)), (90.0, ("sync",))]
    rows = [
        Row(1.0001, 1.2, "sync", "checkout", 200, 0, "a"),  # a tick off: still the arrival at 1.0
        Row(1.0, 1.2, "async", "dropped", 0, 0, "b"),  # dropped is a record of the arrival too
        Row(2.0, 2.5, "sync", "checkout", 504, 1, "c"),  # a retry is not the arrival's record
    ]
    missing = unrecorded_arrivals(schedule, rows, load_end=60.0)
    assert missing == [(1.0001, "sync"), (2.0, "sync")]  # the record at 1.0001 stood for one


LOST = LostWorker(worker="1", lost_at_s=30.0, arrivals_without_record=523, shard_closed=False)
PASSED = Verdict(expectation="sync.checkout.p99 < 1s at rest", outcome="pass", observed="p99 5 ms")


def test_a_verdict_over_a_window_after_the_loss_is_undetermined_naming_the_worker() -> None:
    verdict = gated(PASSED, GeneratorWindow.of([], 20.0, 80.0, lost=[LOST]), 1.0)
    assert verdict.outcome == "undetermined" and verdict.reason is not None
    assert verdict.reason.startswith(f"{LOST_WORKER} before 80.0 s: worker 1 was lost 30.0 s into the run")
    assert "523 of its arrivals have no record" in verdict.reason
    assert "a rerun, with every worker running to the end" in verdict.reason
    assert verdict.evidence["generator"]["lost_workers"] == [LOST.to_json()]
    assert verdict.observed == PASSED.observed
    # A window that ended before the loss is left as it was.
    assert gated(PASSED, GeneratorWindow.of([], 0.0, 20.0, lost=[LOST]), 1.0).outcome == "pass"


def test_the_run_names_the_lost_worker_and_only_its_windows_are_undetermined() -> None:
    rows = tuple(
        Row(i * 0.02, i * 0.02 + 0.01, "sync", "checkout", 200, 0, f"s{i}", i * 0.02) for i in range(4000)
    )
    scenario = made_up_scenario(
        expectations=["sync.checkout.p99 < 1s at baseline", "sync.checkout.p99 < 1s at rest"]
    )
    inputs = RunInputs(scenario=scenario, rows=rows, faults=(), load_end=80.0, lost_workers=(LOST,))
    summary = analyse(inputs)
    baseline, rest = summary.verdicts
    assert baseline.outcome == "pass"
    assert rest.outcome == "undetermined" and rest.reason and "worker 1 was lost 30.0 s" in rest.reason
    assert summary.lost_workers == (LOST,) and not summary.passed
    assert any(
        line.startswith("Generator worker 1 was lost 30 s into the run: 523") for line in summary.reading
    )


def _record(intended: float, order_id: str) -> str:
    return RequestRecord.made(lane="sync", kind="checkout", intended_start=T0 + intended,
                              start=T0 + intended + 0.001, end=T0 + intended + 0.05, status=200,
                              order_id=order_id).json_line()  # fmt: skip


def test_judge_finds_the_lost_worker_from_the_run_directory_alone(tmp_path: Path) -> None:
    # Worker 0 ran to the end; worker 1 was killed 20 s in, mid-line, its shard never closed.
    worker_0 = [_record(t, f"a{t}") for t, _ in _arrivals(0, 2)]
    worker_1 = [_record(t, f"b{t}") for t, _ in _arrivals(1, 2) if t < 20]
    run_dir = write_run_dir(tmp_path / "run", SCENARIO, [])
    (run_dir / "requests.jsonl").write_text(
        "".join(sorted(worker_0 + worker_1, key=lambda x: json.loads(x)["intended_start"]))
    )
    shards = RunDir(run_dir)
    shards.shards.mkdir()
    shards.shard("0").write_text("".join(worker_0))
    shards.shard("1").with_name("worker-1.jsonl.part").write_text("".join(worker_1) + worker_1[0][:30])
    samples = [*_samples("0", 60, stopped=True), *_samples("1", 20, stopped=False)]
    shards.generator.write_text("".join(json.dumps({**s.to_json(), "t": s.t + T0}) + "\n" for s in samples))
    summary = judged_summary(run_dir)
    assert summary.lost_workers == (
        LostWorker(worker="1", lost_at_s=20.0, arrivals_without_record=200, shard_closed=False, torn_lines=1),
    )
    (verdict,) = summary.verdicts
    assert (
        verdict.outcome == "undetermined" and verdict.reason and "worker 1 was lost 20.0 s" in verdict.reason
    )


def test_a_summary_written_before_lost_workers_reads_with_none(tmp_path: Path) -> None:
    run_dir = write_run_dir(tmp_path / "run", SCENARIO, [])
    old = judged_summary(run_dir).to_json()
    del old["lost_workers"]  # as an older doorbuster wrote it
    assert Summary.from_json(old).lost_workers == ()
    written = {**old, "lost_workers": [LOST.to_json()]}
    assert Summary.from_json(json.loads(json.dumps(written))).lost_workers == (LOST,)


def test_a_worker_whose_shard_never_reached_the_merge_is_named_though_it_ran_to_the_end() -> None:
    # Its shard was kept apart (a transfer with a gap: worker-1.jsonl.gap, not a shard to merge).
    samples = [*_samples("0", 60, stopped=True), *_samples("1", 60, stopped=True)]
    rows = _rows(0, 61)
    lost = lost_workers(
        samples, [ShardState(worker="0", closed=True)], rows, load_end=60.0, arrivals=_arrivals
    )
    assert [(w.worker, w.lost_at_s, w.arrivals_without_record) for w in lost] == [("1", 0.1, 300)]
