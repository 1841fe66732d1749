"""``summary.json``: a run's figures, recovery, verdicts and reading, as one typed record.

:class:`Summary` is what :func:`harness.analysis.summary.analyse` returns, what the run writes
(:meth:`Summary.to_json`, with the run's own facts, :class:`RunFacts`, at its end) and what
every reader reads (:func:`read_summary`). Each field carries its one-line description
(``doc`` in its metadata), from which the docs' reference of the file is generated
(``docs/hooks/summary_reference.py``). Figures are rounded by the writer; ``to_json`` writes
them as they are, so a summary read back writes the same JSON.

A reader refuses what a writer would not have written, with the file and the reason, exit 2::

    >>> Summary.from_json({"scenario": "s"})
    Traceback (most recent call last):
    ...
    ValueError: duration_s: Field required; lanes: Field required; passed: Field required
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import pydantic

from harness.config.files import read_json
from harness.records.schema import IncompleteCounters
from harness.records.verdicts import Verdict, verdict_fields
from model.errors import ConfigError

__all__ = [
    "AsyncOrders",
    "ChaosWindow",
    "GeneratorHealth",
    "GeneratorLimits",
    "GeneratorWindowFigures",
    "LadderAmplification",
    "LadderRung",
    "LaneRecovery",
    "LaneSummary",
    "LatencyQuantiles",
    "LostWorker",
    "ProcessFigures",
    "Quantiles",
    "RecoveryFigures",
    "RunFacts",
    "Summary",
    "SyncOrders",
    "WorkerTotals",
    "doc",
    "read_summary",
]

# A figure as the writer made it: a count-like 3 stays 3 when read back, so the JSON is the same.
Number: TypeAlias = int | float

# Every record refuses a field it does not define: a typo is not silently dropped.
_STRICT = pydantic.ConfigDict(extra="forbid")


def doc(text: str, *, omit_none: bool = False) -> dict[str, Any]:
    """A field's metadata: its one-line description (the docs' reference shows it), and with
    ``omit_none`` that the file holds the field only when it has a value (never ``null``)."""
    return {"doc": text, "omit_none": omit_none}


class _Record:
    """The JSON of a record: its fields in order, nested records as their JSON."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_json()
    if isinstance(value, Verdict):
        return value.as_json()
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# -- a lane's figures ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Quantiles(_Record):
    """Milliseconds at each quantile; null when there was no sample."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    p50: Number | None = field(metadata=doc("the median, ms"))
    p95: Number | None = field(metadata=doc("the 95th percentile, ms"))
    p99: Number | None = field(metadata=doc("the 99th percentile, ms"))


@dataclass(frozen=True, kw_only=True)
class LatencyQuantiles(Quantiles):
    max: Number | None = field(metadata=doc("the slowest, ms"))


@dataclass(frozen=True, kw_only=True)
class AsyncOrders(_Record):
    """The async lane's accepted orders against what the services' ledgers saw."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    accepted: int = field(metadata=doc("orders that got their 202"))
    fulfilled: int = field(metadata=doc("accepted orders fulfilled"))
    failed: int = field(metadata=doc("accepted orders that failed"))
    lost: int = field(metadata=doc("accepted orders still unfinished after the drain, or never stored"))
    in_flight: int = field(metadata=doc("unfinished when the user stopped the wait for the drain (not lost)"))
    duplicate_side_effects: int = field(metadata=doc("side effects applied more than once"))
    missing_side_effects: int = field(metadata=doc("side effects a fulfilled order lacks"))


@dataclass(frozen=True, kw_only=True)
class SyncOrders(_Record):
    """The sync lane's orders against what the services' ledgers saw."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    confirmed: int = field(metadata=doc("orders the shopper was told succeeded"))
    failed: int = field(metadata=doc("orders the shopper was told failed"))
    failed_with_side_effects: int = field(metadata=doc("failed orders that left a side effect behind"))
    charged_but_failed: int = field(metadata=doc("failed orders whose payment was taken"))
    duplicate_side_effects: int = field(metadata=doc("side effects applied more than once"))
    missing_side_effects: int = field(metadata=doc("side effects a confirmed order lacks"))


@dataclass(frozen=True, kw_only=True)
class LaneSummary(_Record):
    """One lane's figures over the load."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    requests: int = field(metadata=doc("checkout attempts"))
    errors: int = field(metadata=doc("checkout attempts that failed"))
    error_rate: Number | None = field(metadata=doc("errors / requests; null without requests"))
    throughput_rps: Number = field(metadata=doc("successful checkouts per second (goodput)"))
    latency_ms: LatencyQuantiles = field(
        metadata=doc(
            "every checkout's time waited from its intended start, failures included (async: to the 202)"
        )
    )
    latency_ok_ms: LatencyQuantiles | None = field(
        default=None, metadata=doc("the same over successful checkouts", omit_none=True)
    )
    fulfillment_ms: Quantiles | None = field(
        default=None,
        metadata=doc("async only: from intended start until fulfilled, failed or given up", omit_none=True),
    )
    orders: AsyncOrders | SyncOrders | None = field(
        default=None,
        metadata=doc("every order against the services' ledgers (a system that keeps them)", omit_none=True),
    )


# -- faults, recovery and the ladder -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChaosWindow(_Record):
    """A chaos step's window as applied, in run seconds."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    name: str = field(metadata=doc("the step's name"))
    dependency: str = field(metadata=doc("the hop it was applied to"))
    lanes: tuple[str, ...] = field(metadata=doc("the lanes it was applied on"))
    type: str = field(metadata=doc("the fault's type"))
    attributes: dict[str, Number] = field(metadata=doc("the fault's attributes"))
    start_s: Number = field(metadata=doc("its apply acknowledged (as planned if it never was)"))
    end_s: Number = field(metadata=doc("its removal acknowledged (asked for, or planned, if it was not)"))
    applied: bool = field(metadata=doc("whether it was applied"))
    removed: bool = field(metadata=doc("whether its removal was acknowledged"))


@dataclass(frozen=True, kw_only=True)
class RecoveryFigures(_Record):
    """What a recovery outcome rests on; seconds since the run's t0 unless said."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    success: str = field(metadata=doc("what counted as a success for an arrival"))
    pre_window_s: tuple[Number, Number] = field(
        metadata=doc("the pre-trigger window the baseline rate is taken over")
    )
    pre_arrivals: int = field(metadata=doc("offered arrivals in it"))
    pre_successes: int = field(metadata=doc("those that succeeded"))
    pre_rate: Number | None = field(metadata=doc("their success rate"))
    pre_rate_ci95: tuple[Number, Number] | None = field(metadata=doc("its 95% confidence interval"))
    fraction: Number = field(metadata=doc("the share of the pre-trigger rate a window must reach"))
    threshold: Number | None = field(metadata=doc("fraction x the pre-trigger rate: the bar"))
    smoothing_s: Number = field(metadata=doc("the length of a window"))
    resolution_s: Number = field(metadata=doc("the length of a bin (a second, or the run's time scale)"))
    trigger_end_s: Number = field(metadata=doc("the trigger's removal"))
    observation_s: Number = field(metadata=doc("how long after the removal the outcome was judged"))
    offered_before_rps: Number | None = field(metadata=doc("offered arrivals per second before the trigger"))
    offered_after_rps: Number | None = field(metadata=doc("... and after its removal"))
    retries_before: int = field(metadata=doc("impatient retries before the trigger"))
    retries_after: int = field(metadata=doc("... and after its removal"))
    fulfilment_deadline_s: Number | None = field(
        metadata=doc("async: the slowest fulfilment before the trigger")
    )
    offered: tuple[int, ...] = field(metadata=doc("offered arrivals in each bin after the removal"))
    succeeded: tuple[int, ...] = field(metadata=doc("successes in each bin after the removal"))
    window_rates: tuple[Number | None, ...] = field(
        metadata=doc("each window's success rate after the removal")
    )
    oldest_unfulfilled_s: tuple[Number, ...] = field(
        metadata=doc("async: the oldest unfulfilled order's age at each bin")
    )


@dataclass(frozen=True, kw_only=True)
class LaneRecovery(_Record):
    """Whether a lane recovered after the last fault on it (harness.analysis.recovery)."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    lane: str = field(metadata=doc("the lane"))
    trigger: str = field(metadata=doc("the last fault on the lane"))
    outcome: str = field(metadata=doc("recovered, metastable, not_recovered or undetermined"))
    recovery_s: Number | None = field(
        metadata=doc("time to recover after the trigger's removal, in whole bins")
    )
    reason: str | None = field(metadata=doc("why undetermined or not recovered"))
    evidence: RecoveryFigures | None = field(metadata=doc("what the outcome rests on"))
    recovered: bool = field(metadata=doc("outcome is recovered"))
    window_s: Number = field(metadata=doc("the observation window after the removal"))
    dipped: bool | None = field(
        metadata=doc("whether the trigger pushed the lane below the bar; null: can not tell")
    )
    dip_reason: str | None = field(metadata=doc("why it can not be told"))


@dataclass(frozen=True, kw_only=True)
class LadderAmplification(_Record):
    """Attempts at the slow hop per offered arrival."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    during: Number | None = field(metadata=doc("while the trigger was on; null: not known"))
    after: Number | None = field(metadata=doc("over the observation window after its removal"))
    theory: Number | None = field(metadata=doc("the most the policy allows; null: no bound"))


@dataclass(frozen=True, kw_only=True)
class LadderRung(_Record):
    """What a lane's retry policy did under its trigger (harness.analysis.ladder)."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    policy: str = field(metadata=doc("the lane's retry policy"))
    slow_hop: str = field(metadata=doc("the trigger's dependency"))
    amplification: LadderAmplification = field(metadata=doc("attempts there per offered arrival"))
    shoppers_failed: int = field(metadata=doc("shoppers who did not get what they came for, over the run"))
    shoppers: int = field(metadata=doc("shoppers over the run"))
    recovery_s: Number | None = field(metadata=doc("time to recover after the trigger's removal"))
    outcome: str = field(metadata=doc("the recovery outcome"))


# -- the summary ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunFacts(_Record):
    """What the run adds to the analysis (harness.analysis.recorded.summarise)."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    t0: Number = field(metadata=doc("the run's time origin, epoch seconds"))
    seed: int | None = field(default=None, metadata=doc("the seed of the arrivals' schedule"))
    arrivals: str = field(default="even", metadata=doc("how the open model's arrivals were spaced"))
    interrupted: bool = field(default=False, metadata=doc("Ctrl-C during the load"))
    drain_cut_short: bool = field(default=False, metadata=doc("Ctrl-C during the wait for the drain"))
    broker: dict[str, Any] | None = field(
        default=None,
        metadata=doc(
            "`name`, and `messages_lost`, `redelivered`, `duplicates`, `out_of_order` as the async "
            "lane's processes counted them",
            omit_none=True,
        ),
    )
    counters: IncompleteCounters | None = field(
        default=None,
        metadata=doc(
            "`incomplete` (figure to the processes whose part is unknown) and `restarted`", omit_none=True
        ),
    )
    drained_after_load_s: Number | None = field(
        default=None,
        metadata=doc("seconds from the end of the load until every order finished; null: not seen"),
    )


# -- the load generator's health (harness.analysis.generator.generator_summary) -----------------


@dataclass(frozen=True, kw_only=True)
class GeneratorLimits(_Record):
    """The limits past which the generator was behind (harness.analysis.generator)."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    send_lag_floor_ms: Number = field(metadata=doc("the least send-lag limit of a latency verdict"))
    send_lag_share_of_bound: Number = field(
        metadata=doc("a latency verdict's send-lag limit as a share of its bound")
    )
    send_lag_limit_ms: Number = field(metadata=doc("the send-lag limit of a verdict not on a latency"))
    loop_lag_ms: Number = field(metadata=doc("how late the event loop may run"))
    cpu_share: Number = field(metadata=doc("the share of its core a generator process may use"))


@dataclass(frozen=True, kw_only=True)
class ProcessFigures(_Record):
    """One generator process's figures over a window."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    worker: str = field(metadata=doc("the process"))
    loop_lag_max_ms: Number = field(
        metadata=doc("the median over the window's samples of each one's worst loop lag")
    )
    cpu_share_max: Number = field(metadata=doc("its mean CPU share over the window"))
    never_sent: int = field(metadata=doc("arrivals it never sent, when the window reaches its final backlog"))


@dataclass(frozen=True, kw_only=True)
class GeneratorWindowFigures(_Record):
    """How the generator kept up over one window (the run, or a stage)."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    name: str = field(metadata=doc("run, or the stage's name"))
    start_s: Number = field(metadata=doc("the window's start, run seconds"))
    end_s: Number = field(metadata=doc("its end"))
    arrivals: int = field(metadata=doc("first attempts sent whose intended start falls in it"))
    send_lag_p99_ms: Number | None = field(metadata=doc("their send lag's 99th percentile; null: none"))
    processes: tuple[ProcessFigures, ...] = field(metadata=doc("each generator process's figures there"))
    behind: tuple[str, ...] = field(
        metadata=doc("each way the generator was behind, in words; empty: it kept up")
    )


@dataclass(frozen=True, kw_only=True)
class WorkerTotals(_Record):
    """One generator process's totals over the run."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    due: int = field(metadata=doc("arrivals due"))
    sent: int = field(metadata=doc("arrivals sent"))
    dropped: int = field(metadata=doc("arrivals dropped (the lane at max_in_flight)"))
    never_sent: int = field(metadata=doc("arrivals never sent"))
    cpu_share_max: Number = field(metadata=doc("the largest CPU share of a sample"))
    loop_lag_max_ms: Number = field(metadata=doc("the largest loop lag"))
    send_lag_max_ms: Number = field(metadata=doc("the largest send lag"))


@dataclass(frozen=True, kw_only=True)
class GeneratorHealth(_Record):
    """Was the load generator behind? (harness.analysis.generator)."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    limits: GeneratorLimits = field(metadata=doc("the limits"))
    windows: tuple[GeneratorWindowFigures, ...] = field(
        metadata=doc("the whole run's window, then each stage's")
    )
    workers: dict[str, WorkerTotals] = field(metadata=doc("generator process to its totals"))


@dataclass(frozen=True, kw_only=True)
class LostWorker(_Record):
    """A generator worker lost mid-run (harness.analysis.lost_workers)."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    worker: str = field(metadata=doc("the worker, by its segment of the arrival schedule"))
    lost_at_s: Number = field(
        metadata=doc("run seconds when its records stop: its first arrival without one, or its last sample")
    )
    arrivals_without_record: int = field(metadata=doc("arrivals the schedule gave it that have no record"))
    shard_closed: bool = field(metadata=doc("whether it closed its shard of request records"))
    torn_lines: int = field(default=0, metadata=doc("lines cut off mid-write, dropped from its shard's end"))


@dataclass(frozen=True, kw_only=True)
class Summary(_Record):
    """``summary.json``: the analysis of a run (``run`` None) or a run's summary as written."""

    __pydantic_config__: ClassVar[pydantic.ConfigDict] = _STRICT
    scenario: str = field(metadata=doc("the scenario's name"))
    time_scale: Number = field(default=1.0, metadata=doc("1 unless --time-scale"))
    duration_s: Number = field(metadata=doc("seconds of load judged"))
    lanes: dict[str, LaneSummary] = field(metadata=doc("lane to its figures"))
    retry_amplification: dict[str, Number | None] = field(
        default_factory=dict,
        metadata=doc("lane to downstream attempts per order (the checkout's own services)"),
    )
    chaos: tuple[ChaosWindow, ...] = field(default=(), metadata=doc("each fault's window as applied"))
    drain_s: dict[str, Number | None] = field(
        default_factory=dict,
        metadata=doc("fault to seconds after its removal until every order accepted before it finished"),
    )
    metastability: dict[str, LaneRecovery] = field(
        default_factory=dict, metadata=doc("lane to whether it recovered after the last fault on it")
    )
    ladder: dict[str, LadderRung] = field(
        default_factory=dict, metadata=doc("lane with a trigger to its rung")
    )
    generator: GeneratorHealth | None = field(
        default=None,
        metadata=doc(
            "the load generator's limits, its send lag and health per window, and each process's totals",
            omit_none=True,
        ),
    )
    lost_workers: tuple[LostWorker, ...] = field(
        default=(),
        metadata=doc("generator workers lost mid-run; verdicts over windows from then on are undetermined"),
    )
    verdicts: tuple[Verdict, ...] = field(default=(), metadata=doc("each expectation's verdict"))
    passed: bool = field(
        metadata=doc("true only when every verdict passed (and the run was not interrupted)")
    )
    reading: tuple[str, ...] = field(
        default=(), metadata=doc("a few sentences a person understands in a minute")
    )
    run: RunFacts | None = field(
        default=None, metadata=doc("the run's own facts, written flat at the end", omit_none=True)
    )

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        return {**out, **out.pop("run", {})}

    @property
    def interrupted(self) -> bool:
        return self.run is not None and self.run.interrupted

    @classmethod
    def from_json(cls, obj: Any) -> Summary:
        """The summary of a parsed ``summary.json``; ValueError saying what is wrong with it."""
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object, a run's summary, got {type(obj).__name__}")
        run_keys = [f.name for f in dataclasses.fields(RunFacts)]
        data = {k: v for k, v in obj.items() if k not in run_keys}
        if "t0" in obj:
            data["run"] = {k: obj[k] for k in run_keys if k in obj}
        elif any(k in obj for k in run_keys):
            raise ValueError("t0: Field required (the run's facts are there without it)")
        if isinstance(data.get("verdicts"), list):
            data["verdicts"] = [verdict_fields(v) for v in data["verdicts"]]
        try:
            return _adapter().validate_python(data)
        except pydantic.ValidationError as exc:
            raise ValueError(_problems(exc)) from None


def _problems(exc: pydantic.ValidationError) -> str:
    """``lanes.sync.requests: ...; ...``: the run's facts named as the file has them."""
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"] if not str(p).startswith("function-")]
        loc = loc[1:] if loc[:1] == ["run"] else loc
        out.append((f"{'.'.join(loc)}: " if loc else "") + str(e["msg"]).removeprefix("Value error, "))
    return "; ".join(out)


@functools.cache
def _adapter() -> pydantic.TypeAdapter[Summary]:
    """Built on first use: the schema of every record is a few ms of work at import."""
    return pydantic.TypeAdapter(Summary)


def read_summary(path: Path) -> Summary:
    """``summary.json``, or ConfigError naming the file and what is wrong in it."""
    try:
        return Summary.from_json(read_json(path))
    except ValueError as exc:
        raise ConfigError(f"{path}: not a run's summary: {exc}") from None
