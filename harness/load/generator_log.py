"""``generator.jsonl`` as the master (or the single local process) writes it: every
generator's samples, and the latest of each with its send-lag histogram for the exporter."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from harness.load.latency_histogram import LatencyHistogram, Snapshot
from harness.records.generator import GeneratorSample
from model.buckets import SEND_LAG_BUCKETS

__all__ = ["GeneratorLog"]


class GeneratorLog:
    """Every generator's samples into one file, the latest of each kept for the exporter."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._created = False
        self.latest: dict[str, GeneratorSample] = {}
        self._send_lag: dict[str, Snapshot] = {}

    def add(self, samples: Iterable[GeneratorSample], send_lag: Snapshot, worker: str) -> None:
        """A generator's new samples, and its whole send-lag histogram so far."""
        for sample in samples:
            if self._file is None:
                # Created by this process ("x" fails on an earlier run's); only reopened for append.
                self._file = open(self.path, "a" if self._created else "x", buffering=1)  # noqa: SIM115
                self._created = True
            self._file.write(json.dumps(sample.to_json()) + "\n")
            self.latest[sample.worker] = sample
        self._send_lag[worker] = send_lag

    def take_worker_rows(self, rows: Iterable[Mapping[str, Any]], send_lag: Snapshot, worker: str) -> None:
        """In the master: a worker's samples as it sent them, checked as any reader checks them."""
        self.add([GeneratorSample.from_json(dict(row)) for row in rows], send_lag, worker)

    def send_lag_histogram(self) -> LatencyHistogram:
        """Every generator's send lag, by worker and lane."""
        return LatencyHistogram.merged(SEND_LAG_BUCKETS, self._send_lag.values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
