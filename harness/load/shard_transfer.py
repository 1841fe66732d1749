"""A worker's shard sent to the master in bounded chunks, when the worker's run directory is
its own (another host), and put back together in the master's run directory.

A worker on the master's host writes its shard into the run directory they share. A worker
started with ``DOORBUSTER_OWN_RUN_DIR=1`` writes it into its own directory as it goes, and
after the load streams it to the master over Locust's message channel, CHUNK_BYTES at a time
(never the whole file in memory), at most WINDOW chunks ahead of the master's
acknowledgements, so the channel never holds more of it than that. The master appends each
chunk to ``<shard>.part`` in its run directory as it arrives, acknowledges it, and renames
the shard closed at the last one, so its merge of the shards is the same as on one host.
Chunks carry a sequence number: a chunk missing or out of order stops that shard's
reassembly and is reported, and what arrived is kept as ``<shard>.gap``, which the merge
does not read: never merged as if it were whole.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "mine.jsonl").write_bytes(b"0123456789")
    10
    >>> chunks = list(shard_chunks(folder / "mine.jsonl", "1", chunk_bytes=4))
    >>> [(c.seq, c.data, c.last) for c in chunks]
    [(0, b'0123', False), (1, b'4567', False), (2, b'89', True)]
    >>> receiver = ShardReceiver(lambda worker: folder / "run" / f"worker-{worker}.jsonl", warn=print)
    >>> [receiver.take(c) for c in chunks][-1].read_bytes()
    b'0123456789'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol

from harness.records.run_dir import SHARD_WRITING

__all__ = [
    "CHUNK_BYTES",
    "RETRY_S",
    "SHARD_CHUNK",
    "SHARD_GAP",
    "ShardChunk",
    "ShardReceiver",
    "send_shard",
    "shard_chunks",
]

# The message a chunk of a worker's shard travels in, and the master's acknowledgement of it.
SHARD_CHUNK = "doorbuster_shard_chunk"
SHARD_ACK = "doorbuster_shard_ack"
# A chunk's size at most: a few hundred records per message, so neither side holds a shard
# whole and one message never stalls the channel's other traffic for long.
CHUNK_BYTES = 256 * 1024
# Chunks a worker sends ahead of the master's acknowledgements, at most (2 MiB).
WINDOW = 8
# How long a worker waits before it offers a chunk again to a channel whose queue was full.
RETRY_S = 0.05
# The end of a shard's name whose chunks did not all arrive in order (the merge reads only
# ``.jsonl`` and ``.jsonl.part``).
SHARD_GAP = ".gap"


class ChannelMessage(Protocol):
    """A message of Locust's channel as it is received."""

    type: str
    data: Any


@dataclass(frozen=True, kw_only=True)
class ShardChunk:
    """One piece of worker ``worker``'s shard: the ``seq``-th from 0; ``last`` ends the shard."""

    worker: str
    seq: int
    data: bytes
    last: bool

    def to_message(self) -> dict[str, Any]:
        return {"worker": self.worker, "seq": self.seq, "data": self.data, "last": self.last}

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> ShardChunk:
        return cls(
            worker=str(data["worker"]),
            seq=int(data["seq"]),
            data=bytes(data["data"]),
            last=bool(data["last"]),
        )


def shard_chunks(path: Path, worker: str, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[ShardChunk]:
    """The shard at ``path`` as chunks of at most ``chunk_bytes``, read as they are asked for
    (two chunks in memory at most: the one given and the next, read to know which is last).
    An empty shard is one empty last chunk, so the master still learns it is whole."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
    with path.open("rb") as shard:
        seq, data = 0, shard.read(chunk_bytes)
        while True:
            following = shard.read(chunk_bytes)
            yield ShardChunk(worker=worker, seq=seq, data=data, last=not following)
            if not following:
                return
            seq, data = seq + 1, following


def send_shard(
    path: Path,
    worker: str,
    send: Callable[[str, dict[str, Any]], object],
    *,
    acked: Callable[[], int],
    wait: Callable[[float], object],
    full: tuple[type[Exception], ...] = (),
    patience_s: float = 30.0,
    window: int = WINDOW,
    chunk_bytes: int = CHUNK_BYTES,
) -> int:
    """Every chunk of the shard at ``path`` given to ``send(message_type, data)`` in order, at
    most ``window`` past ``acked()`` (the last chunk the master acknowledged, -1 for none),
    then every one acknowledged; how many chunks. ``wait(seconds)`` waits, taking the acks
    that come meanwhile; a send that raises one of ``full`` (the channel's queue is full) is
    tried again after it. TimeoutError when the master took nothing for ``patience_s``."""
    count = 0
    for chunk in shard_chunks(path, worker, chunk_bytes=chunk_bytes):
        message, waited = chunk.to_message(), 0.0
        while True:
            if chunk.seq - acked() <= window:
                try:
                    send(SHARD_CHUNK, message)
                    break
                except full:
                    pass
            waited = _waited(waited, wait, patience_s, f"worker {worker}'s shard chunk {chunk.seq}")
        count += 1
    waited = 0.0
    while acked() < count - 1:
        waited = _waited(waited, wait, patience_s, f"the acknowledgement of worker {worker}'s last chunk")
    return count


def _waited(waited: float, wait: Callable[[float], object], patience_s: float, what: str) -> float:
    """RETRY_S more waited; TimeoutError once ``patience_s`` were."""
    if waited >= patience_s:
        raise TimeoutError(f"the master took nothing for {patience_s:g}s: {what} not taken")
    wait(RETRY_S)
    return waited + RETRY_S


class ShardAcks:
    """In a worker sending its shard: the last chunk the master acknowledged (-1: none yet)."""

    def __init__(self) -> None:
        self.last = -1

    def take_message(self, data: Mapping[str, Any]) -> None:
        self.last = max(self.last, int(data["seq"]))


def take_messages(
    receive: Callable[[], ChannelMessage], kind: str, take: Callable[[ChannelMessage], object]
) -> NoReturn:
    """Each message of ``kind`` that ``receive`` gives, to ``take`` (others are let go: this is
    for a process whose Locust listener is gone), until the caller interrupts it."""
    while True:
        message = receive()
        if message.type == kind:
            take(message)


class ShardReceiver:
    """In the master: the chunks of remote workers' shards, each appended as it arrives to
    ``<shard>.part`` (``shard_path(worker)``), renamed ``shard`` once its last chunk is in.

    A chunk whose ``seq`` is not the next one expected (one lost, or one repeated), or a
    shard whose last chunk has not come when the master waits no longer (:meth:`abandon`),
    ends that worker's reassembly: what was whole is kept as ``<shard>.gap``, out of the merge, the gap
    is given to ``warn`` and kept in :attr:`gaps`, and the worker's later chunks are ignored.
    """

    def __init__(self, shard_path: Callable[[str], Path], *, warn: Callable[[str], None]) -> None:
        self._shard_path = shard_path
        self._warn = warn
        self._open: dict[str, IO[bytes]] = {}
        self._next: dict[str, int] = {}
        self._done: set[str] = set()
        self.gaps: list[str] = []

    def take(self, chunk: ShardChunk) -> Path | None:
        """One chunk written; the closed shard when it was the last, else None."""
        worker = chunk.worker
        if worker in self._done:
            return None
        shard = self._shard_path(worker)
        expected = self._next.get(worker, 0)
        if chunk.seq != expected:
            self._keep_apart(worker, f"chunk {chunk.seq} came where chunk {expected} was due")
            return None
        out = self._open.get(worker)
        if out is None:
            shard.parent.mkdir(parents=True, exist_ok=True)
            out = self._open[worker] = self._writing(shard).open("wb")  # closed in _finish
        out.write(chunk.data)
        self._next[worker] = expected + 1
        if not chunk.last:
            return None
        self._finish(worker)
        return self._writing(shard).rename(shard)

    def take_message(self, data: Mapping[str, Any]) -> Path | None:
        """:meth:`take` of a chunk as its message's data."""
        return self.take(ShardChunk.from_message(data))

    def abandon(self) -> list[str]:
        """When the master waits no longer: each shard begun but not ended, kept apart as a gap
        (its last chunk never came; its last line may be cut); the workers, by name."""
        pending = sorted(self._open)
        for worker in pending:
            self._keep_apart(worker, f"chunks after {self._next[worker] - 1} never came")
        return pending

    def pending(self) -> list[str]:
        """Workers whose shard has begun to arrive but not ended (nor stopped at a gap)."""
        return sorted(self._open)

    def _keep_apart(self, worker: str, gap: str) -> None:
        """What came of ``worker``'s shard as ``<shard>.gap``, out of the merge; the gap told."""
        self._finish(worker)
        shard = self._shard_path(worker)
        kept = shard.with_name(shard.name + SHARD_GAP)
        if self._writing(shard).exists():
            self._writing(shard).rename(kept)
        else:  # its first chunk was lost: the gap is still named by a file
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.touch()
        self.gaps.append(f"worker {worker}'s shard: {gap}; what came before is in {kept}, not merged")
        self._warn(self.gaps[-1])

    @staticmethod
    def _writing(shard: Path) -> Path:
        return shard.with_name(shard.name + SHARD_WRITING)

    def _finish(self, worker: str) -> None:
        self._done.add(worker)
        out = self._open.pop(worker, None)
        if out is not None:
            out.close()
