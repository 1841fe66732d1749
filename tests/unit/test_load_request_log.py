"""The request log: the master's file, a worker's reports, and the figures added up."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.load.request_log import RequestLog, lane_and_kind
from harness.records.schema import read_requests


def _clock() -> float:
    return 50.0


def test_the_master_writes_its_records_and_each_workers_into_one_log(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    worker = RequestLog(("sync",), path, is_worker=True, clock=_clock)
    worker.open()  # a worker writes no file
    assert worker.record(49.0, "sync", "checkout", 200, 0, "w-1", start=49.5) == 50.0
    worker.observe("sync checkout", 1.0)
    worker.in_flight["sync"] = 3
    report = worker.worker_report(generating=True, worker_id="w")
    assert not path.exists()
    assert worker.worker_report(generating=False, worker_id="w")["rows"] == []  # sent once

    master = RequestLog(("sync",), path, is_worker=False, clock=_clock)
    master.open()
    master.record(48.0, "sync", "dropped", 0, 0, "", start=None)
    master.observe("sync arrival dropped", 2.0)
    master.take_worker_report(report)
    master.close()
    assert [(r.order_id, r.kind) for r in read_requests(path)] == [("", "dropped"), ("w-1", "checkout")]
    assert master.lane_in_flight("sync") == master.total_in_flight() == 3
    assert master.workers_generating() == 1
    merged = master.latency_histogram()
    assert merged.series() == [("sync", "arrival_dropped"), ("sync", "checkout")]
    assert merged.sum_s("sync", "checkout") == 1.0


def test_a_worker_report_with_a_bad_record_is_refused(tmp_path: Path) -> None:
    master = RequestLog(("sync",), tmp_path / "requests.jsonl", is_worker=False)
    report = {"rows": [{"lane": "sync"}], "in_flight": {}, "latency": [], "generating": False, "id": "w"}
    with pytest.raises(ValueError, match="missing field"):
        master.take_worker_report(report)


def test_the_log_is_never_one_an_earlier_process_created(tmp_path: Path) -> None:
    (tmp_path / "requests.jsonl").write_text("")
    with pytest.raises(FileExistsError):
        RequestLog(("sync",), tmp_path / "requests.jsonl", is_worker=False).open()


def test_a_request_name_is_a_lane_and_a_kind() -> None:
    assert lane_and_kind("sync checkout retry") == ("sync", "checkout_retry")
    assert lane_and_kind("async fulfillment") == ("async", "fulfillment")


def test_records_are_written_in_batches_flushed_whole(tmp_path: Path) -> None:
    """No write to the file per request: the records go out when flushed (once a second, by
    the locustfile), and a worker's report is flushed as it is taken."""
    path = tmp_path / "requests.jsonl"
    log = RequestLog(("sync",), path, is_worker=False, clock=_clock)
    log.open()
    log.record(49.0, "sync", "checkout", 200, 0, "o-1", start=49.5)
    log.record(49.1, "sync", "checkout", 200, 0, "o-2", start=49.6)
    assert path.read_text() == ""
    log.flush()
    assert [r.order_id for r in read_requests(path)] == ["o-1", "o-2"]
    worker = RequestLog(("sync",), path, is_worker=True, clock=_clock)
    worker.record(49.2, "sync", "checkout", 200, 0, "w-1", start=49.7)
    log.take_worker_report(worker.worker_report(generating=False, worker_id="w"))
    assert [r.order_id for r in read_requests(path)] == ["o-1", "o-2", "w-1"]
    log.close()
