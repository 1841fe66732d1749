"""The request log: the master's file, a worker's shard and reports, and the figures added up."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.load.request_log import RequestLog, lane_and_kind, wait_for_shards
from harness.records.schema import read_requests


def _clock() -> float:
    return 50.0


def test_a_worker_writes_its_shard_and_the_master_gets_only_its_figures(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    shard = tmp_path / "shards" / "worker-0.jsonl"
    worker = RequestLog(("sync",), path, is_worker=True, clock=_clock)
    worker.open(shard)
    assert worker.record(49.0, "sync", "checkout", 200, 0, "w-1", start=49.5) == 50.0
    worker.observe("sync checkout", 1.0)
    worker.in_flight["sync"] = 3
    report = worker.worker_report(generating=True, worker_id="w")
    assert "rows" not in report  # the records stay with the worker
    worker.flush()
    assert not shard.exists()  # still being written: the master does not merge it yet
    worker.close()
    assert [r.order_id for r in read_requests(shard)] == ["w-1"]
    assert not path.exists()

    master = RequestLog(("sync",), path, is_worker=False, clock=_clock)
    master.open()
    master.record(48.0, "sync", "dropped", 0, 0, "", start=None)
    master.observe("sync arrival dropped", 2.0)
    master.take_worker_report(report)
    assert master.take_shards([shard]) == 1
    master.close()
    assert [(r.order_id, r.kind) for r in read_requests(path)] == [("", "dropped"), ("w-1", "checkout")]
    assert master.lane_in_flight("sync") == master.total_in_flight() == 3
    assert master.workers_generating() == 1
    merged = master.latency_histogram()
    assert merged.series() == [("sync", "arrival_dropped"), ("sync", "checkout")]
    assert merged.sum_s("sync", "checkout") == 1.0


def test_a_worker_report_replaces_that_workers_last_one() -> None:
    master = RequestLog(("sync",), Path("unused.jsonl"), is_worker=False)
    worker = RequestLog(("sync",), Path("unused.jsonl"), is_worker=True)
    worker.observe("sync checkout", 0.2)
    master.take_worker_report(worker.worker_report(generating=True, worker_id="w"))
    worker.observe("sync checkout", 0.3)
    master.take_worker_report(worker.worker_report(generating=False, worker_id="w"))
    assert master.latency_counts().count("sync", "checkout") == 2  # not 3: the counts so far
    assert master.workers_generating() == 0


def test_the_log_is_never_one_an_earlier_process_created(tmp_path: Path) -> None:
    (tmp_path / "requests.jsonl").write_text("")
    with pytest.raises(FileExistsError):
        RequestLog(("sync",), tmp_path / "requests.jsonl", is_worker=False).open()


def test_a_request_name_is_a_lane_and_a_kind() -> None:
    assert lane_and_kind("sync checkout retry") == ("sync", "checkout_retry")
    assert lane_and_kind("async fulfillment") == ("async", "fulfillment")


def test_records_are_written_in_batches_flushed_whole(tmp_path: Path) -> None:
    """No write to the file per request: the records go out when flushed (once a second, by
    the locustfile) or when max_buffered of them are held, whole lines only."""
    path = tmp_path / "requests.jsonl"
    log = RequestLog(("sync",), path, is_worker=False, clock=_clock, max_buffered=3)
    log.open()
    log.record(49.0, "sync", "checkout", 200, 0, "o-1", start=49.5)
    log.record(49.1, "sync", "checkout", 200, 0, "o-2", start=49.6)
    assert path.read_text() == ""
    log.flush()
    assert [r.order_id for r in read_requests(path)] == ["o-1", "o-2"]
    for i in range(3, 10):
        log.record(49.2, "sync", "checkout", 200, 0, f"o-{i}", start=49.7)
    # Never more than max_buffered held: 7 more records, 6 of them written in two batches.
    assert [r.order_id for r in read_requests(path)] == [f"o-{i}" for i in range(1, 9)]
    log.close()
    assert len(read_requests(path)) == 9


def test_a_worker_shard_is_bounded_and_flushed_as_it_goes(tmp_path: Path) -> None:
    shard = tmp_path / "shards" / "worker-1.jsonl"
    log = RequestLog(("sync",), tmp_path / "requests.jsonl", is_worker=True, clock=_clock, max_buffered=2)
    log.open(shard)
    writing = shard.with_name("worker-1.jsonl.part")
    log.record(49.0, "sync", "checkout", 200, 0, "w-1", start=49.5)
    assert writing.read_text() == ""
    log.record(49.1, "sync", "checkout", 200, 0, "w-2", start=49.6)
    assert [r.order_id for r in read_requests(writing)] == ["w-1", "w-2"]
    log.record(49.2, "sync", "checkout", 200, 0, "w-3", start=49.7)
    log.flush()
    assert len(read_requests(writing)) == 3
    log.close()
    assert not writing.exists() and len(read_requests(shard)) == 3


def test_a_buffer_of_no_records_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_buffered must be at least 1, got 0"):
        RequestLog(("sync",), tmp_path / "r.jsonl", is_worker=False, max_buffered=0)


def test_the_master_waits_for_every_shard_closed_and_names_those_not(tmp_path: Path) -> None:
    closed, never = tmp_path / "worker-0.jsonl", tmp_path / "worker-1.jsonl"
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] >= 0.3:
            closed.write_text("")  # worker 0 closes its shard 0.3 s into the wait

    assert wait_for_shards([closed], wait_s=5.0, sleep=sleep, clock=lambda: now[0]) == []
    assert now[0] == pytest.approx(0.3)
    assert wait_for_shards([closed, never], wait_s=1.0, sleep=sleep, clock=lambda: now[0]) == [never]
    assert now[0] == pytest.approx(1.3)
