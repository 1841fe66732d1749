"""Locust's side of a worker's shard sent to the master (``harness/load/shard_transfer``):
the master writes each chunk into its run directory and acknowledges it; a worker whose run
directory is its own sends its shard a window of chunks ahead of the acknowledgements.

Both happen as the processes quit, when Locust may already have stopped its own listener
(a master stops it before quitting fires, a worker told to quit too): then the messages are
read from the connection here, for as long as the caller waits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust.exception import RPCSendError
from locust.runners import MasterRunner, Runner, WorkerRunner

from harness.load.shard_transfer import (
    SHARD_ACK,
    SHARD_CHUNK,
    ChannelMessage,
    ShardAcks,
    ShardReceiver,
    send_shard,
    take_messages,
)
from harness.records.run_dir import RunDir

__all__ = ["ShardChannel"]


class ShardChannel:
    """The shards that travel over Locust's channel: received (a master), sent (a worker)."""

    def __init__(self, run_dir: RunDir, *, warn: Callable[[str], None]) -> None:
        self.received = ShardReceiver(run_dir.shard, warn=warn)
        self.acks = ShardAcks()
        self._warn = warn

    def listen(self, runner: Runner) -> None:
        """Chunks (a master) or their acknowledgements (a worker) taken while Locust listens."""
        if isinstance(runner, MasterRunner):
            runner.register_message(SHARD_CHUNK, lambda msg, **_: self._take_chunk(runner, msg))
        elif isinstance(runner, WorkerRunner):
            runner.register_message(SHARD_ACK, lambda msg, **_: self.acks.take_message(msg.data))

    def receive(self, runner: MasterRunner, seconds: float) -> None:
        """In the master, waiting for the shards: the chunks that come in ``seconds``."""
        _read(runner, seconds, lambda: runner.server.recv_from_client()[1], SHARD_CHUNK,
              lambda msg: self._take_chunk(runner, msg))  # fmt: skip

    def send(self, runner: WorkerRunner, shard: Path, worker: str, *, chunk_bytes: int) -> None:
        """In a worker, its shard closed: sent to the master, or a warning why not all of it."""
        acks = (runner.client.recv, SHARD_ACK, lambda msg: self.acks.take_message(msg.data))
        try:
            send_shard(shard, worker, runner.send_message, full=(RPCSendError,), chunk_bytes=chunk_bytes,
                       acked=lambda: self.acks.last, wait=lambda s: _read(runner, s, *acks))  # fmt: skip
        except TimeoutError as exc:
            self._warn(f"this worker's shard was not all sent: {exc}")

    def _take_chunk(self, runner: MasterRunner, msg: Any) -> None:
        self.received.take_message(msg.data)
        runner.send_message(SHARD_ACK, {"seq": msg.data["seq"]}, msg.node_id)


def _read(
    runner: Runner,
    seconds: float,
    receive: Callable[[], ChannelMessage],
    kind: str,
    take: Callable[[ChannelMessage], object],
) -> None:
    """``seconds`` waited: Locust's listener takes the messages while it runs; once it is gone,
    the messages of ``kind`` are read here."""
    with contextlib.suppress(gevent.Timeout), gevent.Timeout(seconds):
        while len(runner.greenlet):
            gevent.sleep(seconds)
        take_messages(receive, kind, take)
