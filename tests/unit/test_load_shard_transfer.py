"""A worker's shard sent to the master in chunks and put back together, with fakes for the
channel (no Locust)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.load.shard_transfer import (
    RETRY_S,
    SHARD_CHUNK,
    SHARD_GAP,
    ShardChunk,
    ShardReceiver,
    send_shard,
    shard_chunks,
)
from harness.records.run_dir import RunDir


class QueueFull(Exception):
    """The fake channel's queue is full."""


def _shard(tmp: Path, lines: int) -> Path:
    path = tmp / "worker" / "shards" / "worker-1.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(f'{{"n": {i}, "pad": "{"x" * (i % 50)}"}}\n' for i in range(lines)))
    return path


def _receiver(tmp: Path, warnings: list[str]) -> tuple[ShardReceiver, RunDir]:
    run = RunDir(tmp / "master")
    return ShardReceiver(run.shard, warn=warnings.append), run


def test_a_shard_crosses_in_bounded_chunks_and_is_closed_whole_at_the_last(tmp_path: Path) -> None:
    shard = _shard(tmp_path, 5000)
    warnings: list[str] = []
    receiver, run = _receiver(tmp_path, warnings)
    sent: list[dict[str, Any]] = []

    def send(kind: str, data: dict[str, Any]) -> None:
        assert kind == SHARD_CHUNK
        sent.append(data)
        # Until the last chunk, the master holds an open .part file, never a closed shard.
        closed = receiver.take_message(data)
        assert (closed is not None) == data["last"]
        assert run.shard("1").exists() == data["last"]

    count = send_shard(shard, "1", send, sleep=lambda _: None, chunk_bytes=4096)
    size = shard.stat().st_size
    assert count == len(sent) == -(-size // 4096)
    assert max(len(d["data"]) for d in sent) == 4096
    assert [d["seq"] for d in sent] == list(range(count))
    assert run.shard("1").read_bytes() == shard.read_bytes()
    assert run.shard_files() == [run.shard("1")]
    assert not warnings and not receiver.pending()


def test_an_empty_shard_is_one_empty_last_chunk(tmp_path: Path) -> None:
    shard = _shard(tmp_path, 0)
    assert list(shard_chunks(shard, "1")) == [ShardChunk(worker="1", seq=0, data=b"", last=True)]
    receiver, run = _receiver(tmp_path, [])
    for chunk in shard_chunks(shard, "1"):
        receiver.take(chunk)
    assert run.shard("1").read_bytes() == b""


@pytest.mark.parametrize("lost", [0, 3])
def test_a_missing_chunk_is_reported_and_its_shard_kept_out_of_the_merge(tmp_path: Path, lost: int) -> None:
    shard = _shard(tmp_path, 2000)
    warnings: list[str] = []
    receiver, run = _receiver(tmp_path, warnings)
    chunks = list(shard_chunks(shard, "1", chunk_bytes=4096))
    assert len(chunks) > lost + 2
    for chunk in chunks[:lost] + chunks[lost + 1 :]:
        assert receiver.take(chunk) is None
    assert len(warnings) == 1
    assert f"chunk {lost + 1} came where chunk {lost} was due" in warnings[0]
    kept = run.shard("1").with_name("worker-1.jsonl" + SHARD_GAP)
    assert kept.read_bytes() == b"".join(c.data for c in chunks[:lost])
    assert run.shard_files() == []  # neither closed nor .part: the merge does not read it
    assert receiver.gaps == warnings and not receiver.pending()


def test_a_shard_whose_end_never_came_is_kept_apart_when_the_master_waits_no_longer(tmp_path: Path) -> None:
    shard = _shard(tmp_path, 2000)
    warnings: list[str] = []
    receiver, run = _receiver(tmp_path, warnings)
    chunks = list(shard_chunks(shard, "1", chunk_bytes=4096))
    for chunk in chunks[:2]:
        receiver.take(chunk)
    assert receiver.pending() == ["1"] and not warnings
    assert [p.name for p in run.shard_files()] == ["worker-1.jsonl.part"]  # still arriving
    assert receiver.abandon() == ["1"]
    assert warnings == [f"worker 1's shard: chunks after 1 never came; what came before is in "
                        f"{run.shard('1')}{SHARD_GAP}, not merged"]  # fmt: skip
    assert run.shard_files() == [] and not receiver.pending()
    assert receiver.take(chunks[2]) is None  # a late chunk does not reopen it
    assert run.shard_files() == []


def test_two_workers_shards_interleaved_are_reassembled_apart(tmp_path: Path) -> None:
    receiver, run = _receiver(tmp_path, [])
    a = [ShardChunk(worker="0", seq=i, data=f"a{i}\n".encode(), last=i == 2) for i in range(3)]
    b = [ShardChunk(worker="1", seq=i, data=f"b{i}\n".encode(), last=i == 1) for i in range(2)]
    for chunk in [a[0], b[0], a[1], b[1], a[2]]:
        receiver.take(chunk)
    assert run.shard("0").read_text() == "a0\na1\na2\n"
    assert run.shard("1").read_text() == "b0\nb1\n"


def test_a_full_channel_is_waited_on_then_given_up(tmp_path: Path) -> None:
    shard = _shard(tmp_path, 10)
    refusals = iter([True, True, False])
    sent: list[int] = []
    slept: list[float] = []

    def send(_: str, data: dict[str, Any]) -> None:
        if next(refusals, False):
            raise QueueFull
        sent.append(data["seq"])

    assert send_shard(shard, "1", send, full=(QueueFull,), sleep=slept.append) == 1
    assert sent == [0] and slept == [RETRY_S, RETRY_S]

    def never(_: str, __: dict[str, Any]) -> None:
        raise QueueFull

    slept.clear()
    with pytest.raises(QueueFull):
        send_shard(shard, "1", never, full=(QueueFull,), sleep=slept.append, patience_s=1.0)
    assert len(slept) == round(1.0 / RETRY_S)


def test_chunks_survive_the_message_round_trip() -> None:
    chunk = ShardChunk(worker="3", seq=7, data=b'{"a": 1}\n', last=False)
    assert ShardChunk.from_message(chunk.to_message()) == chunk
