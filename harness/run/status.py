"""What a run makes known while it runs, for the live view: ``run-status.json`` in the state dir.

The run writes it (:class:`PublishedProgress` passes each stage through to the run's own
progress display and publishes it), the live server reads it; neither imports the other.  The
file is replaced whole on each write, so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.records.verdicts import Verdict, overall

if TYPE_CHECKING:
    from harness.run.progress import LiveFigures, RunProgress, RunStage

__all__ = [
    "RUN_STATUS_FILE",
    "PublishedProgress",
    "RunStatus",
    "VerdictLine",
    "read_run_status",
    "write_run_status",
]

RUN_STATUS_FILE = "run-status.json"
_NOTES_KEPT = 5


@dataclass(frozen=True, kw_only=True)
class VerdictLine:
    expectation: str
    outcome: str  # pass | fail | undetermined
    observed: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunStatus:
    """One run as it goes: its stage (stack, load, drain, collect, done), the load's stage by
    name, the faults it has in force, and its verdicts once judged."""

    scenario: str
    run_dir: str
    pid: int
    stage: str
    load_stage: str | None = None
    elapsed_s: float = 0.0
    duration_s: float = 0.0
    faults: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    verdicts: tuple[VerdictLine, ...] = ()
    outcome: str | None = None  # the run's, once judged
    updated_at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStatus:
        return cls(
            scenario=str(data["scenario"]),
            run_dir=str(data["run_dir"]),
            pid=int(data["pid"]),
            stage=str(data["stage"]),
            load_stage=None if data.get("load_stage") is None else str(data["load_stage"]),
            elapsed_s=float(data.get("elapsed_s", 0.0)),
            duration_s=float(data.get("duration_s", 0.0)),
            faults=tuple(str(f) for f in data.get("faults", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
            verdicts=tuple(
                VerdictLine(
                    expectation=str(v["expectation"]),
                    outcome=str(v["outcome"]),
                    observed=str(v.get("observed", "")),
                    reason=None if v.get("reason") is None else str(v["reason"]),
                )
                for v in data.get("verdicts", ())
            ),
            outcome=None if data.get("outcome") is None else str(data["outcome"]),
            updated_at=float(data.get("updated_at", 0.0)),
        )


def write_run_status(state_root: Path, status: RunStatus) -> None:
    path = state_root / RUN_STATUS_FILE
    tmp = path.with_name(f".{RUN_STATUS_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(status.as_json()))
    tmp.replace(path)


def read_run_status(state_root: Path) -> RunStatus | None:
    """The last run's status; None if no run has written one (or it can not be read)."""
    try:
        return RunStatus.from_json(json.loads((state_root / RUN_STATUS_FILE).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class PublishedProgress:
    """A :class:`~harness.run.progress.RunProgress` that passes everything on to ``inner`` and
    publishes the run's status for the live view."""

    def __init__(self, inner: RunProgress, state_root: Path, *, scenario: str, run_dir: Path) -> None:
        self.inner = inner
        self.state_root = state_root
        self.status = RunStatus(scenario=scenario, run_dir=str(run_dir), pid=os.getpid(), stage="starting")
        self._publish()

    def _publish(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes, updated_at=time.time())
        with contextlib.suppress(OSError):  # the live view misses an update; the run goes on
            write_run_status(self.state_root, self.status)

    def stage(self, stage: RunStage, text: str) -> None:
        self._publish(stage=stage)
        self.inner.stage(stage, text)

    def tick(self, figures: LiveFigures) -> None:
        self._publish(
            load_stage=figures.stage,
            elapsed_s=figures.elapsed_s,
            duration_s=figures.duration_s,
            faults=figures.faults,
        )
        self.inner.tick(figures)

    def done(self) -> None:
        self.inner.done()

    def note(self, text: str) -> None:
        self._publish(notes=(*self.status.notes, text)[-_NOTES_KEPT:])
        self.inner.note(text)

    def heading(self, text: str) -> None:
        self.inner.heading(text)

    def collecting(self) -> None:
        self._publish(stage="collect", faults=())

    def judged(self, verdicts: Sequence[Verdict]) -> None:
        """The run's verdicts, as its summary holds them."""
        self._publish(
            stage="done",
            verdicts=tuple(
                VerdictLine(
                    expectation=v.expectation, outcome=v.outcome, observed=v.observed, reason=v.reason
                )
                for v in verdicts
            ),
            outcome=overall(verdicts) if verdicts else None,
        )

    def ended(self) -> None:
        """The run stopped before it was judged (an error, Ctrl-C)."""
        if self.status.stage != "done":
            self._publish(stage="ended", faults=())
