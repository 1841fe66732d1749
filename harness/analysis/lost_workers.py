"""Was a generator worker lost mid-run?  Decided from the run's own files, so that ``doorbuster
judge`` decides it offline exactly as the run did.

A worker of a distributed run is *lost* when either sign holds:

- **its shard was never closed**: a worker renames ``shards/worker-<i>.jsonl.part`` to
  ``.jsonl`` as it quits, and the master waits for that before it merges; a ``.part`` left
  after the run is a worker that never quit (killed, its host gone);
- **its health samples stop early**: it has no ``stopped`` sample (the one a generator takes
  as its test ends), and its last one is more than :data:`SILENT_S` before the load's end and
  before the last sample of another worker that went on.

and it is not a worker with every arrival of its recorded that had only taken its ``stopped``
sample (slow to close its shard) or closed its shard (its reports to the master were lost).

Its *arrivals without a record* are those the schedule gave it (worker i of N takes arrivals
i, i + N, ..., :mod:`harness.load.schedule`) up to the load's end, less those with a first
attempt (or a ``dropped`` record) in ``requests.jsonl`` at their intended start; it was lost
at its first arrival without one, or at its last sample if that came first.  Verdicts over
windows from then on are undetermined (:func:`harness.analysis.generator.gated`): the load
the scenario offered there was not all recorded.

    >>> from harness.records.shards import ShardState
    >>> lost_workers([], [ShardState(worker="0", closed=True)], [], load_end=10.0,
    ...     arrivals=lambda segment, segments: iter([]))
    ()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

from harness.analysis.inputs import Row
from harness.records.generator import GeneratorSample
from harness.records.shards import ShardState
from harness.records.summary import LostWorker

__all__ = ["SILENT_S", "Arrivals", "lost_workers", "unrecorded_arrivals"]

# A generator samples its health every second and reports it with the next second's report:
# three seconds without a sample, while another worker's go on, is not a late report.
SILENT_S = 3.0
# Intended starts are kept to 0.1 ms (a tick); one recomputed from the schedule may round to
# the tick beside it.
_TICK_S = 1e-4

# A schedule's segment: ``arrivals(segment, segments)`` gives ``(offset_s, lanes)`` in order.
Arrivals = Callable[[int, int], Iterator[tuple[float, tuple[str, ...]]]]


def _tick(seconds: float) -> int:
    return round(seconds / _TICK_S)


def unrecorded_arrivals(
    schedule: Iterable[tuple[float, tuple[str, ...]]], rows: Sequence[Row], *, load_end: float
) -> list[tuple[float, str]]:
    """The arrivals ``(offset_s, lane)`` of ``schedule`` up to ``load_end`` with no first
    attempt nor ``dropped`` record in ``rows`` at their intended start (run seconds).

    >>> row = Row(intended=0.5, end=0.6, lane="sync", kind="checkout", code=200, attempt=0, order_id="a")
    >>> unrecorded_arrivals([(0.0, ("sync",)), (0.5, ("sync",)), (9.0, ("sync",))], [row], load_end=5.0)
    [(0.0, 'sync')]
    """
    recorded = Counter(
        (r.lane, _tick(r.intended)) for r in rows if r.attempt == 0 and r.kind in ("checkout", "dropped")
    )
    missing = []
    for offset, lanes in schedule:
        if offset > load_end:
            break
        for lane in lanes:
            tick = _tick(offset)
            key = next(
                (k for k in ((lane, tick), (lane, tick - 1), (lane, tick + 1)) if recorded[k] > 0), None
            )
            if key is None:
                missing.append((offset, lane))
            else:
                recorded[key] -= 1  # one record stands for one arrival
    return missing


def _silent(mine: Sequence[GeneratorSample], others: Sequence[GeneratorSample], load_end: float) -> bool:
    """Its samples stop more than SILENT_S before the load's end while another worker's go on."""
    if any(s.stopped for s in mine):
        return False
    last = max((s.t for s in mine), default=0.0)
    others_last = max((s.t for s in others), default=-float("inf"))
    return last + SILENT_S < min(load_end, others_last)


def lost_workers(
    samples: Sequence[GeneratorSample],
    shards: Sequence[ShardState],
    rows: Sequence[Row],
    *,
    load_end: float,
    arrivals: Arrivals,
) -> tuple[LostWorker, ...]:
    """Each worker lost mid-run, from its health samples (``t`` in run seconds), how it left
    its shard and the records (see the module's docstring); none for a single process's run."""
    states = {s.worker: s for s in shards}
    if not states:
        return ()  # a single process writes requests.jsonl itself: it is the run
    # Workers are named by their segment of the schedule: "0" .. "N-1".
    workers = sorted((w for w in states.keys() | {s.worker for s in samples} if w.isdigit()), key=int)
    if not workers:
        return ()
    segments = max(int(w) for w in workers) + 1
    found = []
    for worker in workers:
        mine = [s for s in samples if s.worker == worker]
        others = [s for s in samples if s.worker != worker]
        state = states.get(worker, ShardState(worker=worker, closed=False))
        if state.closed and not _silent(mine, others, load_end):
            continue
        missing = unrecorded_arrivals(arrivals(int(worker), segments), rows, load_end=load_end)
        stopped = any(s.stopped for s in mine)
        if not missing and not state.torn_lines and (stopped or state.closed):
            continue  # slow to close its shard, or its reports were lost: its records are whole
        marks = [offset for offset, _ in missing[:1]]
        if mine and not stopped:
            marks.append(max(s.t for s in mine))  # its last word, if its records stop later
        found.append(
            LostWorker(
                worker=worker,
                lost_at_s=round(max(0.0, min(marks, default=0.0)), 2),
                arrivals_without_record=len(missing),
                shard_closed=state.closed,
                torn_lines=state.torn_lines,
            )
        )
    return tuple(found)
