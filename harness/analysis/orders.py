"""Every order of the run against what the downstream services' ledgers saw."""

from __future__ import annotations

from harness.analysis.inputs import RunInputs
from harness.records.summary import AsyncOrders, SyncOrders

__all__ = ["reconcile"]


def reconcile(inputs: RunInputs, lane: str) -> AsyncOrders | SyncOrders:
    """Every order of the run against what the downstream services saw.

    async: each order that got its 202 is fulfilled, failed or lost (still unfinished after the
    drain, or never stored), or in flight when the user stopped the wait for the drain; each
    fulfilled order's side effects applied exactly once in effect.
    sync: each confirmed order's side effects applied once; a failed order may have left some
    behind (a charge for an order the shopper was told had failed).
    """
    rows = [r for r in inputs.rows if r.lane == lane and r.kind == "checkout"]
    effects = inputs.side_effects.get(lane, {})
    duplicated = sum(1 for deps in effects.values() for n in deps.values() if n > 1)
    if lane == "async":
        accepted = {r.order_id for r in rows if r.ok}
        statuses = [inputs.async_statuses.get(oid, "missing") for oid in accepted]
        complete = {oid for oid in accepted if inputs.async_statuses.get(oid) == "fulfilled"}
        missing = sum(1 for deps in effects.values() for oid in complete if deps.get(oid, 0) == 0)
        unfinished = statuses.count("accepted")
        in_flight = unfinished if inputs.drain_cut_short else 0
        return AsyncOrders(
            accepted=len(accepted),
            fulfilled=statuses.count("fulfilled"),
            failed=statuses.count("failed"),
            lost=statuses.count("missing") + unfinished - in_flight,
            in_flight=in_flight,
            duplicate_side_effects=duplicated,
            missing_side_effects=missing,
        )
    confirmed = {r.order_id for r in rows if r.ok}
    failed = {r.order_id for r in rows if not r.ok and r.order_id} - confirmed
    missing = sum(1 for deps in effects.values() for oid in confirmed if deps.get(oid, 0) == 0)
    payment = effects.get("payment", {})
    return SyncOrders(
        confirmed=len(confirmed),
        failed=len(failed),
        failed_with_side_effects=sum(1 for oid in failed if any(d.get(oid, 0) for d in effects.values())),
        charged_but_failed=sum(1 for oid in failed if payment.get(oid, 0)),
        duplicate_side_effects=duplicated,
        missing_side_effects=missing,
    )
