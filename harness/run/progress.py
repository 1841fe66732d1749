"""A run's progress as it happens, through a small interface, so that how it is shown (rich, at
the CLI's edge) is no concern of the run.

A run calls :meth:`RunProgress.stage` when a stage begins (starting the stack, the load, the
wait for the drain), :meth:`RunProgress.tick` with the live figures each second of the load,
:meth:`RunProgress.done` when that stage ends (on an error or Ctrl-C too), and
:meth:`RunProgress.note` for a line to show, :meth:`RunProgress.heading` for a part of the
run (a shootout's broker). :class:`LiveTail` makes the live figures from
the run directory as it grows.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from harness.analysis.estimates import percentile
from harness.records.run_dir import SHARD_WRITING, RunDir
from harness.records.schema import RequestRecord
from model.scenario import Scenario
from model.topology import LANES

__all__ = ["LaneFigures", "LiveFigures", "LiveTail", "RunProgress", "RunStage"]

RunStage = Literal["stack", "load", "drain"]
# The live figures are over this many most recent seconds.
_WINDOW_S = 10


@dataclass(frozen=True, kw_only=True)
class LaneFigures:
    lane: str
    ok_per_s: float
    p95_ok_s: float | None  # None: no success in the window
    errors_per_s: float


@dataclass(frozen=True, kw_only=True)
class LiveFigures:
    """The load so far: per lane over the last ten seconds, and the faults applied now."""

    scenario: str
    elapsed_s: float
    duration_s: float
    stage: str | None  # None once the load's stages are over
    faults: tuple[str, ...]
    lanes: tuple[LaneFigures, ...]


class RunProgress(Protocol):
    """What a run reports while it runs; the CLI shows it."""

    def stage(self, stage: RunStage, text: str) -> None: ...
    def tick(self, figures: LiveFigures) -> None: ...
    def done(self) -> None: ...
    def note(self, text: str) -> None: ...
    def heading(self, text: str) -> None: ...


class LiveTail:
    """Reads the request log as it grows, and the faults as applied, for the live figures."""

    def __init__(self, scenario: Scenario, run_dir: RunDir) -> None:
        self.scenario = scenario
        self.run_dir = run_dir
        # Read so far of each file: requests.jsonl and each worker's shard, by its closed name
        # (a shard is renamed once closed; its offset carries over).
        self.offsets: dict[str, int] = {}
        self.recent: dict[str, deque[tuple[float, float, bool]]] = {lane: deque() for lane in LANES}
        self.started = time.time()

    def _read(self) -> None:
        for path in (self.run_dir.requests, *self.run_dir.shard_files()):
            self._read_file(path)
        self._forget_old()

    def _read_file(self, path: Path) -> None:
        name = path.name.removesuffix(SHARD_WRITING)
        try:
            with path.open() as fh:
                fh.seek(self.offsets.get(name, 0))
                chunk = fh.read()
        except FileNotFoundError:  # not made yet, or renamed closed since listed: read next time
            return
        complete = chunk[: chunk.rfind("\n") + 1]  # a line being written is read next time
        self.offsets[name] = self.offsets.get(name, 0) + len(complete.encode())
        for line in complete.splitlines():
            with contextlib.suppress(ValueError, TypeError):
                rec = RequestRecord.from_json(json.loads(line))
                if rec.kind == "checkout":
                    self.recent[rec.lane].append((rec.end, rec.end - rec.intended_start, rec.ok))

    def _forget_old(self) -> None:
        horizon = time.time() - _WINDOW_S
        for q in self.recent.values():
            while q and q[0][0] < horizon:
                q.popleft()

    def _active_faults(self) -> tuple[str, ...]:
        try:
            record = json.loads(self.run_dir.chaos.read_text())
        except (OSError, ValueError):  # not written yet, or being rewritten
            return ()
        return tuple(f["name"] for f in record["faults"] if f["started_at"] and not f["ended_at"])

    def figures(self) -> LiveFigures:
        self._read()
        elapsed = time.time() - self.started
        stage = self.scenario.load.stage_at(elapsed)
        lanes = []
        for lane in self.scenario.load.lanes:
            q = self.recent[lane]
            ok = [lat for _, lat, good in q if good]
            p95 = percentile(ok, 0.95)
            lanes.append(
                LaneFigures(
                    lane=lane,
                    ok_per_s=len(ok) / _WINDOW_S,
                    p95_ok_s=None if math.isnan(p95) else p95,
                    errors_per_s=sum(1 for *_, good in q if not good) / _WINDOW_S,
                )
            )
        return LiveFigures(
            scenario=self.scenario.name,
            elapsed_s=elapsed,
            duration_s=self.scenario.duration_s,
            stage=stage.name if stage else None,
            faults=self._active_faults(),
            lanes=tuple(lanes),
        )
