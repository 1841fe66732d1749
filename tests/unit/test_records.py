"""The run directory's records: one typed definition each, read back exactly, refused with the
reason when a writer would not have written them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.inputs import Row
from harness.records.schema import (
    AttemptTimeline,
    IncompleteCounters,
    RequestRecord,
    RunLedger,
    read_ledger,
    read_requests,
)
from model.errors import ConfigError

T0 = 1_700_000_000.0

RECORDS = [
    RequestRecord.made(lane="async", kind="checkout", intended_start=T0 + 1.00001, start=T0 + 1.2,
                       end=T0 + 1.5, status=202, order_id="a1"),
    RequestRecord.made(lane="sync", kind="checkout", intended_start=T0 + 2, start=T0 + 7.1, end=T0 + 12.1,
                       status=0, order_id="", attempt=1),
    RequestRecord.made(lane="async", kind="fulfillment", intended_start=T0 + 1, start=T0 + 1.5, end=T0 + 4,
                       status=500, order_id="a1"),
    RequestRecord.made(lane="sync", kind="dropped", intended_start=T0 + 3, start=None, end=T0 + 3,
                       status=0, order_id=""),
]  # fmt: skip


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_record_reads_back_as_written_through_a_file(tmp_path: Path) -> None:
    log = _write(tmp_path / "requests.jsonl", [r.to_json() for r in RECORDS])
    assert read_requests(log) == RECORDS
    line = json.loads(log.read_text().splitlines()[0])
    assert set(line) == {
        "lane",
        "kind",
        "intended_start",
        "start",
        "end",
        "status",
        "ok",
        "order_id",
        "attempt",
    }
    assert line["intended_start"] == round(T0 + 1.00001, 4) and line["ok"] is True


def test_the_writers_line_is_json_dumps_of_the_record_byte_for_byte(tmp_path: Path) -> None:
    odd = RequestRecord.made(lane="sync", kind="checkout", intended_start=7, start=7.00005, end=1e16,
                             status=200, order_id='quote " back\\slash \u00e9 \n', attempt=3)  # fmt: skip
    for rec in [*RECORDS, odd]:
        assert rec.json_line() == json.dumps(rec.to_json()) + "\n"
    log = tmp_path / "requests.jsonl"
    log.write_text("".join(rec.json_line() for rec in [*RECORDS, odd]))
    assert read_requests(log) == [*RECORDS, odd]


def test_ok_is_derived_from_kind_and_status() -> None:
    assert [r.ok for r in RECORDS] == [True, False, False, False]


def test_the_analysis_row_is_the_record_in_run_seconds() -> None:
    row = Row.from_record(RECORDS[0], T0)
    assert (row.lane, row.kind, row.code, row.order_id, row.ok) == ("async", "checkout", 202, "a1", True)
    assert row.intended == pytest.approx(1.0) and row.end == pytest.approx(1.5)
    assert row.start == pytest.approx(1.2)
    assert Row.from_record(RECORDS[3], T0).start is None


GOOD = RECORDS[0].to_json()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ([T0, T0 + 1, "sync", "checkout", 200, 0, "o1"], "expected a JSON object with fields lane, kind"),
        ({**GOOD, "ok": False}, "ok is false, but a checkout with status 202 is a success"),
        ({**GOOD, "status": 503}, "ok is true, but a checkout with status 503 is not a success"),
        ({k: v for k, v in GOOD.items() if k != "order_id"}, "missing field(s) order_id"),
        ({**GOOD, "code": 202}, "unknown field(s) code"),
        ({**GOOD, "lane": "other"}, "lane 'other' is not one of sync, async"),
        ({**GOOD, "status": "202"}, "status must be an integer"),
        ({**GOOD, "end": None}, "intended_start and end must be numbers"),
        ({**GOOD, "start": None}, "a checkout record needs its start"),
        ({**GOOD, "kind": "dropped", "ok": False}, "a dropped arrival has status 0, start null"),
    ],
)
def test_a_bad_line_is_refused_naming_the_file_the_line_and_why(
    tmp_path: Path, line: Any, reason: str
) -> None:
    log = _write(tmp_path / "requests.jsonl", [GOOD, GOOD, line])
    with pytest.raises(ConfigError) as caught:
        read_requests(log)
    assert str(caught.value).startswith(f"{log}: line 3: not a request record (")
    assert reason in str(caught.value)


def test_non_finite_times_are_refused(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    log.write_text(json.dumps(GOOD).replace(str(GOOD["end"]), "NaN") + "\n")
    with pytest.raises(ConfigError, match=r"line 1: .*end must be a finite number"):
        read_requests(log)


LEDGER = RunLedger(
    t0=T0, started=T0 - 1, load_end=T0 + 30.25, drained_at=None, interrupted=False, drain_cut_short=True,
    async_statuses={"a1": "failed"}, side_effects={"async": {"email": {"a1": 2}}, "sync": {}},
    drains={"slow": None, "down": 1.5}, attempts={"sync": (12.0, 4.0), "async": (3.0, 3.0)},
    broker={"name": "rabbitmq", "redelivered": 2},
    counters=IncompleteCounters(incomplete={"broker.redelivered": ["worker"]}, restarted=[]),
    attempt_timeline=AttemptTimeline(
        times=[T0, T0 + 2], attempts={"sync": {"email": [0.0, 9.0]}, "async": {"email": [0.0, None]}}
    ),
)  # fmt: skip


def test_the_ledger_reads_back_as_written(tmp_path: Path) -> None:
    (tmp_path / "ledger.json").write_text(LEDGER.to_json())
    assert read_ledger(tmp_path / "ledger.json") == LEDGER


def test_a_bad_ledger_is_refused_naming_the_file_and_the_field(tmp_path: Path) -> None:
    data = json.loads(LEDGER.to_json())
    del data["load_end"]
    data["drains"] = {"slow": "soon"}
    (tmp_path / "ledger.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        read_ledger(tmp_path / "ledger.json")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'ledger.json'}: not a run's ledger: ")
    assert "load_end" in message and "drains.slow" in message


def test_a_timeline_whose_counts_do_not_match_its_times_is_refused(tmp_path: Path) -> None:
    data = json.loads(LEDGER.to_json())
    data["attempt_timeline"]["attempts"]["sync"]["email"] = [0.0]
    (tmp_path / "ledger.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"attempt_timeline: attempts.sync.email has 1 counts for 2 times"):
        read_ledger(tmp_path / "ledger.json")


def test_a_ledger_from_before_the_timeline_still_reads(tmp_path: Path) -> None:
    data = json.loads(LEDGER.to_json())
    del data["attempt_timeline"]
    (tmp_path / "ledger.json").write_text(json.dumps(data))
    assert read_ledger(tmp_path / "ledger.json").attempt_timeline is None
