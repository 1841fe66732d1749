"""A fake progress, passed to runs and sweeps in place of the CLI's: it records what it got."""

from __future__ import annotations

from harness.run.progress import LiveFigures, RunStage
from harness.sweep.grid import Cell


class ProgressRecorder:
    """Every call, in order: ``("stage", "load")``, ``("tick", figures)``, ``("done",)``..."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def stage(self, stage: RunStage, text: str) -> None:
        self.events.append(("stage", stage))

    def tick(self, figures: LiveFigures) -> None:
        self.events.append(("tick", figures))

    def done(self) -> None:
        self.events.append(("done",))

    def note(self, text: str) -> None:
        self.events.append(("note", text))

    def heading(self, text: str) -> None:
        self.events.append(("heading", text))

    def trial_starting(self, cell: Cell, repeat: int, done: int, planned: int, left_s: float | None) -> None:
        self.events.append(("trial", f"{cell.id}/{repeat}"))

    @property
    def notes(self) -> list[str]:
        return [str(e[1]) for e in self.events if e[0] == "note"]

    @property
    def kinds(self) -> list[str]:
        """The events without their figures: ``["stage load", "tick", "done"]``."""
        return [" ".join(str(part) for part in e) if e[0] != "tick" else "tick" for e in self.events]
