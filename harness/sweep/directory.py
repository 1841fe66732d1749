"""A sweep directory on disk: its grid, its finished trials, what resuming it means.

.. code-block:: text

    runs/<time>-sweep-<name>/
      grid.json                   the grid (harness.sweep.grid.grid_record): resume refuses another
      trials/<cell-id>/<repeat>/  one trial's run directory (doorbuster run's files) and
        trial.json                written last: a directory without it is a partial trial, removed
      sweep.json, map.png, sweep.html

A trial that started on a stack that was not clean is recorded (``status: "dirty"``) and not
counted.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.config.files import read_json
from harness.sweep.grid import Cell
from model.errors import ConfigError

__all__ = ["GRID_FILE", "TRIAL_FILE", "SweepDir", "TrialRecord"]

GRID_FILE = "grid.json"
TRIAL_FILE = "trial.json"


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """``trial.json``: one finished trial of a cell."""

    cell: Cell
    repeat: int
    status: Literal["counted", "dirty"]
    started_at: float
    duration_s: float
    dirt: tuple[str, ...] = ()  # why the stack was not clean, for a dirty trial
    restarts: int = 0  # stack restarts needed to get a clean stack before it
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps(
            {
                "cell": self.cell.as_json(),
                "repeat": self.repeat,
                "status": self.status,
                "started_at": self.started_at,
                "duration_s": round(self.duration_s, 1),
                "dirt": list(self.dirt),
                "restarts": self.restarts,
                "notes": list(self.notes),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, data: Any) -> TrialRecord:
        if not isinstance(data, dict):
            raise ValueError("expected an object")
        status = data.get("status")
        if status not in ("counted", "dirty"):
            raise ValueError(f"status: expected counted or dirty, got {status!r}")
        repeat, started, duration = data.get("repeat"), data.get("started_at"), data.get("duration_s")
        if not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat: expected a positive whole number, got {repeat!r}")
        if not isinstance(started, int | float) or not isinstance(duration, int | float):
            raise ValueError("started_at and duration_s: expected numbers")
        return cls(
            cell=Cell.from_json(data.get("cell")),
            repeat=repeat,
            status=status,
            started_at=float(started),
            duration_s=float(duration),
            dirt=tuple(str(d) for d in data.get("dirt", [])),
            restarts=int(data.get("restarts", 0)),
            notes=tuple(str(n) for n in data.get("notes", [])),
        )


class SweepDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    def trial_dir(self, cell: Cell, repeat: int) -> Path:
        return self.trials_dir / cell.id / str(repeat)

    def is_sweep(self) -> bool:
        return (self.root / GRID_FILE).is_file()

    def open(self, grid: dict[str, Any]) -> list[Path]:
        """Start a new sweep here, or resume the one here if its grid is ``grid``; a different
        grid is refused (exit 2) naming what differs.  Returns the partial trials removed."""
        grid = json.loads(json.dumps(grid))  # as it reads back: lists, not tuples
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"sweep directory {self.root}: is a file, not a directory")
        if self.is_sweep():
            recorded = read_json(self.root / GRID_FILE)
            if recorded != grid:
                keys = sorted(k for k in {*grid, *recorded} if recorded.get(k) != grid.get(k))
                raise ConfigError(
                    f"sweep directory {self.root}: holds a sweep of another grid (differs in "
                    f"{', '.join(keys)}); give a new --out directory, or the same scenario, time scale "
                    "and settings to resume it"
                )
            return self.remove_partial()
        if self.root.is_dir() and any(self.root.iterdir()):
            raise ConfigError(
                f"sweep directory {self.root}: not empty and not a sweep (no {GRID_FILE}); give a new "
                "or empty directory, or a sweep's directory to resume it"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / GRID_FILE).write_text(json.dumps(grid, indent=2))
        return []

    def remove_partial(self) -> list[Path]:
        """Trial directories without ``trial.json`` (a trial stopped or killed mid-way)."""
        removed = []
        if self.trials_dir.is_dir():
            for cell_dir in sorted(self.trials_dir.iterdir()):
                for trial in sorted(cell_dir.iterdir()) if cell_dir.is_dir() else []:
                    if trial.is_dir() and not (trial / TRIAL_FILE).is_file():
                        shutil.rmtree(trial)
                        removed.append(trial)
        return removed

    def finished(self) -> list[tuple[TrialRecord, Path]]:
        """Every finished trial, with its directory; a spoiled ``trial.json`` is refused, named."""
        found = []
        for path in sorted(self.trials_dir.glob(f"*/*/{TRIAL_FILE}")):
            try:
                found.append((TrialRecord.from_json(read_json(path)), path.parent))
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{path}: not a sweep's trial record ({exc})") from None
        return found

    def write_trial(self, record: TrialRecord) -> None:
        path = self.trial_dir(record.cell, record.repeat)
        path.mkdir(parents=True, exist_ok=True)
        (path / TRIAL_FILE).write_text(record.to_json())
