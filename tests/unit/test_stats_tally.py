"""Locust's stats fed in bulk from a tally show what Locust's per-request ``request`` event
showed: the same rows by name in its CSV, the same failures, the same percentiles."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from harness.binaries import PROJECT_ROOT
from harness.load.stats_tally import StatsTally, method_of

# (name, started, ended, length, error): latencies either side of Locust's rounding steps.
REQUESTS = [
    ("sync checkout", 0.0, 0.0042, 37, None),
    ("sync checkout", 0.0, 0.147, 37, None),
    ("sync checkout", 0.0, 3.432, 0, "no answer: timeout"),
    ("sync checkout", 0.0, 58.76, 12, "HTTP 502"),
    ("sync checkout", 0.0, 0.0999, 37, None),
    ("sync checkout retry", 0.0, 1.2, 0, "no answer: timeout"),
    ("async fulfillment", 0.0, 2.5, 0, "gave up waiting"),
    ("async fulfillment", 0.0, 0.61, 0, None),
    ("sync arrival dropped", 0.0, 0.0, 0, "max_in_flight"),
    ("sync checkout", 0.0, 0.0005, 37, "HTTP 502"),
]

# Run in its own interpreter: importing Locust patches the process with gevent.
SCRIPT = textwrap.dedent(
    """
    import csv, io, json, sys, time
    from locust.env import Environment
    from locust.event import Events
    from locust.stats import (
        PERCENTILES_TO_REPORT, RequestStats, StatsCSV, bucket_response_time,
        setup_distributed_stats_event_listeners,
    )
    from harness.load.stats_tally import StatsTally, method_of

    requests = json.loads(sys.argv[1])
    now = int(time.time()) - 5  # a whole second, so both stamp the same second

    def csv_of(stats):
        env = Environment(events=Events())
        env.stats = stats
        out = io.StringIO()
        writer = StatsCSV(env, PERCENTILES_TO_REPORT)
        w = csv.writer(out)
        writer._requests_data_rows(w)
        # Requests/s and failures/s divide by how long each took to feed: not compared
        rows = [r[:9] + r[11:] for r in csv.reader(out.getvalue().splitlines())]
        out = io.StringIO()
        writer._failures_data_rows(csv.writer(out))
        # Method, name, error, occurrences (first and last seen are stamped when logged)
        return rows + [r[:4] for r in csv.reader(out.getvalue().splitlines())]

    one_by_one = RequestStats()
    for name, started, ended, length, error in requests:
        method = method_of(name)
        # the same epoch times as the tally gets, so the same float arithmetic
        end = now + 0.5
        one_by_one.log_request(method, name, (end - (end - (ended - started))) * 1000.0, length)
        if error:
            one_by_one.log_error(method, name, Exception(error))
    for entry in [*one_by_one.entries.values(), one_by_one.total]:
        entry.num_reqs_per_sec = {now: entry.num_requests}
        entry.num_fail_per_sec = {now: entry.num_failures} if entry.num_failures else {}

    # Merged by Locust's own code for a worker's report, as the locustfile merges the tally.
    bulk = RequestStats()
    merge = Events()
    setup_distributed_stats_event_listeners(merge, bulk)
    """
)


def _run(script: str, requests: list[tuple[str, float, float, int, str | None]]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(requests)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("flushes", [1, 3])
def test_locust_shows_the_same_stats_fed_in_bulk_as_request_by_request(flushes: int) -> None:
    """One flush, or the same requests over three flushes (as once a second): identical CSV
    rows (requests, failures, median, average, min, max, every percentile) and failures."""
    script = SCRIPT + textwrap.dedent(
        f"""
    tally = StatsTally(bucket=bucket_response_time)
    step = -(-len(requests) // {flushes})
    for i in range(0, len(requests), step):
        for name, started, ended, length, error in requests[i:i + step]:
            # ended within the same whole second as the one-by-one stamps, latency as measured
            tally.add(name, now + 0.5 - (ended - started), now + 0.5, 200, length, error)
        report = tally.drain()
        if not report.empty:
            merge.worker_report.fire(client_id="test", data=report.as_worker_report())
    print(json.dumps({{"one_by_one": csv_of(one_by_one), "bulk": csv_of(bulk),
                      "errors": sorted(e.to_name() for e in bulk.errors.values()),
                      "expected_errors": sorted(e.to_name() for e in one_by_one.errors.values()),
                      "occurrences": sorted(e.occurrences for e in bulk.errors.values()),
                      "expected_occurrences": sorted(e.occurrences for e in one_by_one.errors.values())}}))
    """
    )
    result = _run(script, REQUESTS)
    assert result["bulk"] == result["one_by_one"]
    assert result["errors"] == result["expected_errors"]
    assert result["occurrences"] == result["expected_occurrences"]
    rows = result["bulk"]
    assert isinstance(rows, list)
    names = [row[1] for row in rows[: len({r[0] for r in REQUESTS}) + 1]]
    assert "sync checkout" in names and "Aggregated" in names


def test_a_drain_takes_what_came_since_the_last_one() -> None:
    tally = StatsTally(bucket=round)
    tally.add("sync checkout", 10.0, 10.1, 200)
    tally.add("sync checkout", 10.0, 11.2, 0, error="no answer: timeout")
    first = tally.drain()
    tally.add("async checkout", 12.0, 12.5, 202)
    second = tally.drain()
    assert [(e["name"], e["num_requests"], e["num_failures"]) for e in first.stats] == [
        ("sync checkout", 2, 1)
    ]
    assert first.stats[0]["num_reqs_per_sec"] == {10: 1, 11: 1}
    assert first.stats[0]["num_fail_per_sec"] == {11: 1}
    assert first.stats_total["num_requests"] == 2 and first.stats_total["start_time"] == 10.1
    assert [(e["name"], e["num_requests"]) for e in second.stats] == [("async checkout", 1)]
    assert not second.errors and second.stats_total["last_request_timestamp"] == 12.5
    assert tally.drain().empty


def test_a_repeated_error_is_one_row_with_its_occurrences() -> None:
    tally = StatsTally(bucket=round)
    for ended in (1.0, 2.0, 3.0):
        tally.add("sync checkout", 0.0, ended, 502, error="HTTP 502")
    tally.add("sync checkout", 0.0, 4.0, 0, error="no answer: timeout")
    errors = sorted(tally.drain().errors.values(), key=lambda e: str(e["error"]))
    assert [(e["error"], e["occurrences"], e["first_seen"], e["last_seen"]) for e in errors] == [
        ("Exception('HTTP 502')", 3, 1.0, 3.0),
        ("Exception('no answer: timeout')", 1, 4.0, 4.0),
    ]


def test_checkouts_are_posts_and_the_rest_gets() -> None:
    assert [method_of(n) for n in ("sync checkout", "async checkout retry", "async fulfillment")] == [
        "POST",
        "POST",
        "GET",
    ]
