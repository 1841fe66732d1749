"""Is the stack clean for the next trial?  What is still dirty, named.

Clean means: no fault applied and every proxy enabled; every process answering; the sync
lane's pool idle (no thread busy, nothing queued); every downstream idle (nothing in work,
work abandoned by its caller included, nothing queued); every worker holding no message and
its queue empty; the outbox empty and no async order of the last trial unfinished; every
circuit breaker closed.  A system of the user's is clean when no fault is applied and every
process answers: doorbuster knows none of its gauges.  The gauges are read from each
process's own ``/metrics`` (not from Prometheus, whose scrape lags), so a "clean" reading is
of this moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import requests

from harness.faults.chaos import Chaos
from harness.metrics.scrape import MetricsPage, scrape
from harness.stack.control import probe
from model import metric_names as names
from model.errors import DoorbusterError, MetricsUnreadable
from model.topology import ProcessSpec, Topology

__all__ = ["BUSY_GAUGES", "busy_gauges", "stack_dirt"]

# Gauges that are 0 on an idle stack, and what a non-zero one means.
BUSY_GAUGES: dict[str, str] = {
    names.THREAD_POOL_BUSY: "pool threads busy",
    names.THREAD_POOL_QUEUED: "orders waiting for a pool thread",
    names.DOWNSTREAM_INFLIGHT: "requests in work",
    names.DOWNSTREAM_QUEUED: "requests queued",
    names.WORKER_MESSAGES_IN_PROGRESS: "messages held by the worker",
    names.BROKER_QUEUE_DEPTH: "messages in the queue",
    names.OUTBOX_BACKLOG: "outbox rows unpublished",
    names.CIRCUIT_BREAKER_STATE: "circuit breaker not closed",
}


def busy_gauges(page: MetricsPage) -> list[str]:
    """The non-zero idle gauges in one process's metrics page, each as a reason.

    >>> from harness.metrics.scrape import parse_page
    >>> busy_gauges(parse_page('doorbuster_thread_pool_busy{lane="sync"} 3.0\\n', process="order-sync"))
    ["order-sync: pool threads busy {'lane': 'sync'} = 3"]
    """
    return [
        f"{page.process}: {BUSY_GAUGES[sample.name]} {dict(sample.labels)} = {sample.value:g}"
        for sample in page.samples
        if sample.name in BUSY_GAUGES and sample.value != 0
    ]


def _get(url: str, **params: Any) -> requests.Response:
    answer = requests.get(url, params=params, timeout=5)
    answer.raise_for_status()
    return answer


def stack_dirt(
    topology: Topology,
    *,
    since: float,
    fetch: Callable[..., requests.Response] = _get,
    read_metrics: Callable[[ProcessSpec], MetricsPage] = scrape,
) -> list[str]:
    """Why the stack is not clean now (empty: clean).  ``since``: the start of the last trial,
    whose async orders must all have finished; ``fetch`` reads the ledger, ``read_metrics`` a
    process's metrics page."""
    reasons: list[str] = []
    try:
        chaos = Chaos(topology)
        reasons += [f"fault still applied: {f.lane}-{f.dependency} {f.type}" for f in chaos.active()]
    except DoorbusterError as exc:
        reasons.append(f"could not read the faults: {exc}")
    for spec in topology.processes:
        if not probe(spec, timeout_s=2.0):
            reasons.append(f"{spec.name}: not answering")
            continue
        if spec.kind not in ("order", "downstream", "worker"):
            continue
        try:
            reasons += busy_gauges(read_metrics(spec))
        except MetricsUnreadable as exc:
            reasons.append(f"{spec.name}: could not read its metrics ({exc})")
    if not topology.settings.keeps_ledger:
        return reasons  # a system of the user's: no ledger of unfinished orders to wait on
    try:
        ledger = fetch(f"{topology.order_service('async').url}/ledger", since=since).json()
        unfinished = int(ledger["orders"]["accepted"])
        if unfinished:
            reasons.append(f"order-async: {unfinished} order(s) of the last trial unfinished")
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        reasons.append(f"order-async: could not read its ledger ({exc})")
    return reasons


def first_reasons(reasons: Iterable[str], n: int = 3) -> str:
    """A short line for the terminal: the first few reasons and how many more."""
    listed = list(reasons)
    more = f" (and {len(listed) - n} more)" if len(listed) > n else ""
    return "; ".join(listed[:n]) + more
