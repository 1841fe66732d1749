"""A worker's shard sent to the master in chunks and put back together, with fakes for the
channel (no Locust)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.load.shard_transfer import (
    RETRY_S,
    SHARD_ACK,
    SHARD_CHUNK,
    SHARD_GAP,
    WINDOW,
    ShardAcks,
    ShardChunk,
    ShardReceiver,
    send_shard,
    shard_chunks,
    take_messages,
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


class FakeMaster:
    """The master's side of the channel: each chunk it takes written and acknowledged, but
    only when the worker waits (as the channel delivers them while the sender sleeps)."""

    def __init__(self, receiver: ShardReceiver, run: RunDir) -> None:
        self.receiver, self.run = receiver, run
        self.queued: list[dict[str, Any]] = []
        self.acked = -1
        self.most_queued = 0

    def send(self, kind: str, data: dict[str, Any]) -> None:
        assert kind == SHARD_CHUNK
        self.queued.append(data)
        self.most_queued = max(self.most_queued, len(self.queued))

    def deliver(self, _: float) -> None:
        for data in self.queued:
            closed = self.receiver.take_message(data)
            # Until the last chunk, the master holds an open .part file, never a closed shard.
            assert (closed is not None) == data["last"] == self.run.shard("1").exists()
            self.acked = data["seq"]
        self.queued.clear()


def test_a_shard_crosses_in_bounded_chunks_a_window_at_a_time(tmp_path: Path) -> None:
    shard = _shard(tmp_path, 5000)
    warnings: list[str] = []
    receiver, run = _receiver(tmp_path, warnings)
    master = FakeMaster(receiver, run)
    count = send_shard(
        shard, "1", master.send, acked=lambda: master.acked, wait=master.deliver, chunk_bytes=4096
    )
    assert count == -(-shard.stat().st_size // 4096) > 3 * WINDOW
    assert master.most_queued == WINDOW  # never more of the shard in the channel than the window
    assert master.acked == count - 1  # it returned once the last chunk was acknowledged
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


def test_a_full_channel_is_waited_on_and_a_silent_master_given_up(tmp_path: Path) -> None:
    shard = _shard(tmp_path, 10)
    refusals = iter([True, True, False])
    sent: list[int] = []
    slept: list[float] = []

    def send(_: str, data: dict[str, Any]) -> None:
        if next(refusals, False):
            raise QueueFull
        sent.append(data["seq"])

    assert send_shard(shard, "1", send, full=(QueueFull,), acked=lambda: 0, wait=slept.append) == 1
    assert sent == [0] and slept == [RETRY_S, RETRY_S]

    # A master that acknowledges nothing: the worker gives up after its patience, saying so.
    slept.clear()
    sent.clear()
    with pytest.raises(TimeoutError, match="the master took nothing for 1s"):
        send_shard(shard, "1", send, acked=lambda: -1, wait=slept.append, patience_s=1.0)
    assert sent == [0] and len(slept) == round(1.0 / RETRY_S)


def test_acks_keep_the_highest_and_take_messages_takes_only_its_kind() -> None:
    acks = ShardAcks()
    for seq in (0, 2, 1):
        acks.take_message({"seq": seq})
    assert acks.last == 2

    @dataclass
    class Message:
        type: str
        data: Any

    inbox = iter([Message("stats", 1), Message(SHARD_ACK, {"seq": 5}), Message(SHARD_ACK, {"seq": 6})])
    taken: list[Any] = []

    def receive() -> Message:
        message = next(inbox, None)
        if message is None:
            raise EOFError  # the caller's interruption (a timeout, in the locustfile)
        return message

    with pytest.raises(EOFError):
        take_messages(receive, SHARD_ACK, lambda m: taken.append(m.data))
    assert taken == [{"seq": 5}, {"seq": 6}]


def test_chunks_survive_the_message_round_trip() -> None:
    chunk = ShardChunk(worker="3", seq=7, data=b'{"a": 1}\n', last=False)
    assert ShardChunk.from_message(chunk.to_message()) == chunk
