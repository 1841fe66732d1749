"""The CLI's edge for progress: a run's and a sweep's progress shown with rich on a console.

This and :mod:`harness.cli.main` are the only modules that import rich; runs and sweeps report
through :class:`harness.run.progress.RunProgress` and :class:`harness.sweep.runner.SweepEvents`.
"""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from harness.run.progress import LiveFigures, RunStage
from harness.sweep.grid import Cell

__all__ = ["ConsoleProgress", "live_table"]


def live_table(figures: LiveFigures) -> Table:
    """The last ten seconds per lane, titled with the stage and the faults applied now."""
    title = (
        f"{figures.scenario}: {figures.elapsed_s:5.0f}s / {figures.duration_s:.0f}s, "
        f"stage {figures.stage or 'draining'}; faults: {', '.join(figures.faults) or 'none'}"
    )
    table = Table("lane", "ok/s", "p95 (ok)", "errors/s", title=title, title_justify="left")
    for lane in figures.lanes:
        table.add_row(
            lane.lane,
            f"{lane.ok_per_s:.1f}",
            "-" if lane.p95_ok_s is None else f"{lane.p95_ok_s:.2f}s",
            f"{lane.errors_per_s:.1f}",
        )
    return table


class ConsoleProgress:
    """A spinner while the stack starts and the backlog drains, a live table during the load."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None
        self._live: Live | None = None

    def stage(self, stage: RunStage, text: str) -> None:
        self.done()
        if stage != "load":  # the load's live table starts with its first figures
            self._status = self.console.status(text)
            self._status.start()

    def tick(self, figures: LiveFigures) -> None:
        if self._live is None:
            self._live = Live(
                live_table(figures), console=self.console, refresh_per_second=1, transient=False
            )
            self._live.start()
        else:
            self._live.update(live_table(figures))

    def done(self) -> None:
        status, live, self._status, self._live = self._status, self._live, None, None
        if live is not None:
            live.stop()
        if status is not None:
            status.stop()

    def note(self, text: str) -> None:
        self.console.print(escape(text))

    def heading(self, text: str) -> None:
        self.console.rule(escape(text))

    def trial_starting(self, cell: Cell, repeat: int, done: int, planned: int, left_s: float | None) -> None:
        left = "time left: estimating" if left_s is None else f"~{left_s / 60:.0f} min left"
        self.console.rule(f"trial {done + 1} of {planned} planned: {cell.id}, repeat {repeat} ({left})")
