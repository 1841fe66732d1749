"""The run's reading: a few sentences a person understands in a minute."""

from __future__ import annotations

import math

from harness.analysis.figures import lane_figures
from harness.analysis.inputs import FaultWindow, RunInputs
from harness.records.summary import AsyncOrders, Summary, SyncOrders

__all__ = ["reading"]


def _describe(fault: FaultWindow) -> str:
    a = fault.attributes
    if fault.type == "latency":
        return f"{a.get('latency', 0) / 1000:g} s slow"
    if fault.type == "http_delay":
        return f"{a.get('latency', 0) / 1000:g} s slower"
    if fault.type == "down":
        return "down"
    if fault.type == "timeout":
        return "timing out"
    if fault.type == "http_error":
        return f"answering {int(a.get('status', 500))} to {a.get('rate', 0):.0%} of requests"
    return f"under {fault.type}"


def reading(inputs: RunInputs, summary: Summary) -> list[str]:
    """A few sentences a person understands in a minute."""
    lines = []
    windows = summary.generator.windows if summary.generator else ()
    run = next((w for w in windows if w.name == "run"), None)
    if run is not None and run.behind:
        lines.append(
            f"The load generator fell behind its schedule ({'; '.join(run.behind)}): verdicts over "
            "where it was behind are undetermined, since what they would measure is the generator."
        )
    for lost in summary.lost_workers:
        lines.append(
            f"Generator worker {lost.worker} was lost {lost.lost_at_s:g} s into the run: "
            f"{lost.arrivals_without_record} of its arrivals have no record, so verdicts over windows "
            "from then on are undetermined; a rerun with every worker running to the end would decide them."
        )
    b0, b1 = inputs.scenario.baseline_window()
    for fault in inputs.faults:
        parts = [f"{fault.dependency} was {_describe(fault)} for {fault.end - fault.start:.0f} s"]
        if "sync" in inputs.scenario.load.lanes:
            sync = lane_figures(inputs.rows, "sync", fault.start, fault.end)
            if sync.requests:
                parts.append(f"{sync.error_rate:.0%} of sync checkouts failed")
        if "async" in inputs.scenario.load.lanes:
            during = lane_figures(inputs.rows, "async", fault.start, fault.end).stat("checkout", "p99")
            base = lane_figures(inputs.rows, "async", b0, b1).stat("checkout", "p99")
            if not math.isnan(during):
                parts.append(f"async 202 p99 was {during:.2f} s (baseline {base:.2f} s)")
            drained = inputs.drains.get(fault.name)
            parts.append(
                f"the backlog drained {drained:.0f} s later"
                if drained is not None
                else "the backlog did not drain"
            )
        lines.append(", ".join(parts) + ".")
    for lane, m in summary.metastability.items():
        measure = "fulfilment" if lane == "async" else "success rate"
        if m.outcome == "undetermined":
            lines.append(f"Whether the {lane} lane recovered after {m.trigger} can not be told: {m.reason}.")
        elif m.outcome == "recovered" and m.recovery_s is not None:
            lines.append(
                f"The {lane} lane's {measure} per offered arrival was back "
                f"{round(m.recovery_s, 3):g} s after {m.trigger} was removed, and stayed back "
                f"for {round(m.window_s, 3):g} s."
            )
        elif m.outcome == "metastable":
            lines.append(
                f"The {lane} lane stayed down after {m.trigger} was removed: {m.reason}: "
                "a metastable failure."
            )
        else:
            lines.append(f"The {lane} lane did not recover after {m.trigger}: {m.reason}.")
    async_lane, sync_lane = summary.lanes.get("async"), summary.lanes.get("sync")
    orders = async_lane.orders if async_lane else None
    if isinstance(orders, AsyncOrders):
        lines.append(
            f"The async lane accepted {orders.accepted} orders: {orders.fulfilled} fulfilled, "
            f"{orders.failed} failed, {orders.lost} lost, "
            f"{orders.duplicate_side_effects} duplicated side effects."
            + (
                f" {orders.in_flight} were still in flight when the wait for the drain was stopped."
                if orders.in_flight
                else ""
            )
        )
    sync_orders = sync_lane.orders if sync_lane else None
    if isinstance(sync_orders, SyncOrders) and (
        sync_orders.charged_but_failed or sync_orders.duplicate_side_effects
    ):
        lines.append(
            f"The sync lane confirmed {sync_orders.confirmed} orders; {sync_orders.charged_but_failed} "
            f"shoppers were charged for an order they were told had failed, and "
            f"{sync_orders.duplicate_side_effects} side effects were applied twice."
        )
    amp = summary.retry_amplification.get("sync")
    if amp is not None:
        chain = len(inputs.scenario.stack.chain)
        lines.append(f"Each sync order cost {amp:.1f} downstream calls ({chain} without retries).")
    return lines
