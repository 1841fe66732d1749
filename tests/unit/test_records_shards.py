"""The workers' shards merged into one requests.jsonl by intended start."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.records.run_dir import RunDir
from harness.records.schema import RequestRecord, read_requests
from harness.records.shards import (
    ShardState,
    merge_left_shards,
    merge_shards,
    merged_records,
    read_shard,
    shard_states,
)
from model.errors import ConfigError


def _rec(intended: float, order_id: str) -> RequestRecord:
    return RequestRecord.made(
        lane="sync", kind="checkout", intended_start=intended, start=intended + 0.01,
        end=intended + 0.2, status=200, order_id=order_id,
    )  # fmt: skip


def _shard(path: Path, records: list[RequestRecord]) -> Path:
    path.write_text("".join(r.json_line() for r in records))
    return path


def test_shards_merge_by_intended_start_into_one_log(tmp_path: Path) -> None:
    # Each shard in the order its requests ended, not their intended starts.
    a = _shard(tmp_path / "worker-0.jsonl", [_rec(3.0, "a3"), _rec(1.0, "a1"), _rec(5.0, "a5")])
    b = _shard(tmp_path / "worker-1.jsonl", [_rec(2.0, "b2"), _rec(4.0, "b4")])
    c = _shard(tmp_path / "worker-2.jsonl", [_rec(3.0, "c3"), _rec(0.5, "c0")])
    out = io.StringIO()
    assert merge_shards([a, b, c], out) == 7
    log = tmp_path / "requests.jsonl"
    log.write_text(out.getvalue())
    merged = read_requests(log)
    assert [r.order_id for r in merged] == ["c0", "a1", "b2", "a3", "c3", "b4", "a5"]  # ties: shard order
    # The same records, line for line as the worker wrote them.
    assert sorted(r.json_line() for r in merged) == sorted(
        line + "\n" for p in (a, b, c) for line in p.read_text().splitlines()
    )


def test_a_lost_workers_shard_cut_off_mid_line_loses_that_line_counted(tmp_path: Path) -> None:
    whole = _shard(tmp_path / "worker-0.jsonl", [_rec(1.0, "a1")])
    cut = tmp_path / "worker-1.jsonl.part"  # never closed: its worker was killed while writing
    line = _rec(2.0, "b2").json_line()
    cut.write_text(_rec(1.5, "b1").json_line() + line[: len(line) // 2])
    assert [r.order_id for r in merged_records([whole, cut])] == ["a1", "b1"]
    state, records = read_shard(cut)
    assert state == ShardState(worker="1", closed=False, torn_lines=1)
    assert [r.order_id for r in records] == ["b1"]
    assert read_shard(whole)[0] == ShardState(worker="0", closed=True, torn_lines=0)


def test_a_never_closed_shard_cut_just_before_a_newline_keeps_its_whole_record(tmp_path: Path) -> None:
    cut = tmp_path / "worker-1.jsonl.part"
    cut.write_text(_rec(1.5, "b1").json_line() + _rec(2.0, "b2").json_line().rstrip("\n"))
    state, records = read_shard(cut)
    assert state.torn_lines == 0 and [r.order_id for r in records] == ["b1", "b2"]


def test_a_bad_line_elsewhere_or_in_a_closed_shard_is_refused_naming_its_file_and_line(
    tmp_path: Path,
) -> None:
    line = _rec(2.0, "b2").json_line()
    closed = tmp_path / "worker-0.jsonl"  # closed by its worker: it wrote whole lines, or it is not one
    closed.write_text(_rec(1.5, "b1").json_line() + line[: len(line) // 2])
    with pytest.raises(ConfigError, match=rf"{closed}: line 2: not a request record"):
        merged_records([closed])
    middle = tmp_path / "worker-1.jsonl.part"  # only the last line of a shard can be cut off
    middle.write_text(line[: len(line) // 2] + "\n" + _rec(2.5, "b3").json_line())
    with pytest.raises(ConfigError, match=rf"{middle}: line 1: not a request record"):
        merged_records([middle])


def test_how_each_worker_left_its_shard_is_read_from_the_run_directory(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.shards.mkdir()
    _shard(run_dir.shard("0"), [_rec(2.0, "a2")])
    run_dir.shard("1").with_name("worker-1.jsonl.part").write_text('{"lane": "sy')
    assert shard_states(run_dir) == (
        ShardState(worker="0", closed=True, torn_lines=0),
        ShardState(worker="1", closed=False, torn_lines=1),
    )
    assert shard_states(RunDir(tmp_path / "single")) == ()


def test_no_shards_merge_to_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    assert merge_shards([], out) == 0
    assert out.getvalue() == ""


def test_shards_the_master_did_not_merge_are_merged_after_the_load(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.shards.mkdir()
    _shard(run_dir.shard("0"), [_rec(2.0, "a2")])
    _shard(run_dir.shard("1").with_name("worker-1.jsonl.part"), [_rec(1.0, "b1")])  # never closed
    run_dir.requests.write_text("")  # the master made the log, and was killed before its merge
    assert merge_left_shards(run_dir) == 2
    assert [r.order_id for r in read_requests(run_dir.requests)] == ["b1", "a2"]
    # The log holds the merge now: a second call leaves it as it is.
    assert merge_left_shards(run_dir) == 0
    assert len(read_requests(run_dir.requests)) == 2


def test_without_shards_the_log_is_left_as_it_is(tmp_path: Path) -> None:
    assert merge_left_shards(RunDir(tmp_path)) == 0
    assert not RunDir(tmp_path).requests.exists()  # a single process's run: nothing to make
