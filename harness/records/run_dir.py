"""A run's directory: which files a run writes and reads, each under one name.

The records themselves have one typed definition each: ``requests.jsonl`` lines are
:class:`harness.records.schema.RequestRecord`, ``ledger.json`` is :class:`harness.records.schema.RunLedger`,
``generator.jsonl`` lines are :class:`harness.records.generator.GeneratorSample`,
``chaos.json`` is :class:`harness.faults.timeline.ChaosRecord`, ``scenario.json`` is the
:class:`harness.config.scenarios.Scenario` judged, and ``series.json`` is :class:`RunSeries` here.
``summary.json`` is :class:`harness.records.summary.Summary`. ``shards/worker-<i>.jsonl`` are a
distributed run's workers' own request records, merged into ``requests.jsonl`` after the load.

    >>> RunDir(Path("runs/x")).ledger
    PosixPath('runs/x/ledger.json')
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from harness.binaries import PROJECT_ROOT
from harness.records.schema import RunLedger
from harness.records.summary import Summary
from model.errors import ConfigError

__all__ = [
    "CHAOS_FILE",
    "GENERATOR_FILE",
    "LEDGER_FILE",
    "REPORT_FILE",
    "REQUESTS_FILE",
    "SCENARIO_FILE",
    "SERIES_FILE",
    "SHARDS_DIR",
    "SHARD_WRITING",
    "SUMMARY_FILE",
    "PanelLine",
    "RunDir",
    "RunSeries",
    "new_run_dir",
]

REQUESTS_FILE = "requests.jsonl"
CHAOS_FILE = "chaos.json"
GENERATOR_FILE = "generator.jsonl"
LEDGER_FILE = "ledger.json"
SCENARIO_FILE = "scenario.json"
SERIES_FILE = "series.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
# Each worker's own request records, merged into requests.jsonl after the load; a shard being
# written ends in SHARD_WRITING, renamed without it once its worker closed it.
SHARDS_DIR = "shards"
SHARD_WRITING = ".part"


class PanelLine(TypedDict):
    """One line of a report panel: its legend and its ``[time, value]`` points."""

    legend: str
    points: list[list[float]]


class RunSeries(TypedDict):
    """``series.json``: every report panel's series over the run, from Prometheus."""

    start: NotRequired[float]
    end: NotRequired[float]
    step: NotRequired[float]
    panels: dict[str, list[PanelLine]]
    # A query Prometheus did not answer (or Prometheus itself, then no start/end/step).
    errors: NotRequired[list[str]]


@dataclass(frozen=True)
class RunDir:
    """Where each of a run's files is, and the writers of the run's own records."""

    root: Path

    @property
    def requests(self) -> Path:
        return self.root / REQUESTS_FILE

    @property
    def shards(self) -> Path:
        return self.root / SHARDS_DIR

    def shard(self, worker: str) -> Path:
        """Worker ``worker``'s request records, once it closed them (``.part`` added while written)."""
        return self.shards / f"worker-{worker}.jsonl"

    def shard_files(self) -> list[Path]:
        """Every shard in the run directory, closed or still written, by name."""
        if not self.shards.is_dir():
            return []
        ends = (".jsonl", f".jsonl{SHARD_WRITING}")
        return sorted(p for p in self.shards.iterdir() if p.name.endswith(ends))

    @property
    def chaos(self) -> Path:
        return self.root / CHAOS_FILE

    @property
    def generator(self) -> Path:
        return self.root / GENERATOR_FILE

    @property
    def ledger(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def scenario(self) -> Path:
        return self.root / SCENARIO_FILE

    @property
    def series(self) -> Path:
        return self.root / SERIES_FILE

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def locust_log(self) -> Path:
        return self.root / "locust.log"

    @property
    def locust_csv_prefix(self) -> Path:
        """Locust's ``--csv`` prefix: it writes ``locust_stats.csv`` and the like."""
        return self.root / "locust"

    @property
    def locust_html(self) -> Path:
        return self.root / "locust.html"

    def write_ledger(self, ledger: RunLedger) -> None:
        self.ledger.write_text(ledger.to_json())

    def write_summary(self, summary: Summary) -> None:
        self.summary.write_text(json.dumps(summary.to_json(), indent=2))

    def write_series(self, series: RunSeries) -> None:
        self.series.write_text(json.dumps(series))


def new_run_dir(out: Path | None, scenario_name: str) -> Path:
    """``out``, or ``runs/<time>-<scenario>``; ConfigError if it already holds files, since a
    run's files (its request log above all) must be that run's alone."""
    run_dir = out or PROJECT_ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario_name}"
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir}: is a file, not a directory")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise ConfigError(
            f"run directory {run_dir}: not empty (another run's files?); give a new or empty directory, "
            "or remove this one first"
        )
    return run_dir
