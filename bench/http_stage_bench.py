"""Benchmark of the HTTP fault stage (stage/httpfault): what one hop through it costs, and
whether a rate is a share of requests on keep-alive connections.

    .venv/bin/python bench/http_stage_bench.py          # about 70 seconds

(a) added latency: 1,000 requests/s on pooled keep-alive connections, for 20 s in all, to a
    trivial upstream directly and through the stage with no faults, in ten alternating 2 s
    blocks so that both see the same machine; prints p50 and p99 of each (with their 95%
    intervals) and the stage's added p50 and p99, each the median over the block pairs of
    the stage's block's figure minus the direct block's beside it (targets: under 0.2 ms and
    1 ms).  The same hop through
    Toxiproxy (a TCP proxy, no faults) is measured beside them, for reference: what any one
    more process on the path costs on this machine now.
(b) ``rate: 0.3``: an http_error at rate 0.3 for 5 s at the same rate; the share of errors
    with its 95% interval, which must hold 0.3.

The load generator is bench/httpload (Go, open model: a request starts every 1/rate s
whatever the answers do; latency from the scheduled start to the body's end), built with
``go build`` into .tools/bin; the upstream is the same program with ``-serve``.  The load
average is printed beside the figures: the machine may be shared.  Everything listens on and
sends to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadgen_bench import free_port, go_build
from targets_check import Target, report

from harness.analysis.estimates import percentile, percentile_interval, proportion_interval
from harness.binaries import find_binary
from harness.faults.http_stage_server import running_http_stage
from harness.faults.toxiproxy_client import ToxiproxyClient
from model.http_faults import HttpError
from model.topology import Endpoint

RATE = 1000.0
ADDED_P50_MS = 0.2
ADDED_P99_MS = 1.0
ERROR_RATE = 0.3
# Short blocks, alternating between the paths, each stage block compared with the direct
# block beside it: a burst of another engineer's work spoils one pair, not the figure.
BLOCKS_PER_PATH = 10


@contextlib.contextmanager
def upstream(binary: Path) -> Iterator[Endpoint]:
    endpoint = Endpoint(host="127.0.0.1", port=free_port())
    proc = subprocess.Popen([str(binary), "-serve", endpoint.address])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection((endpoint.host, endpoint.port), 0.5):
                break
            time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def toxiproxy_hop(upstream: Endpoint) -> Iterator[Endpoint]:
    """A Toxiproxy server with one proxy, no toxics, from a new loopback port to ``upstream``."""
    api = Endpoint(host="127.0.0.1", port=free_port())
    cmd = [str(find_binary("toxiproxy-server")), "-host", api.host, "-port", str(api.port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = ToxiproxyClient(api, timeout_s=2.0, connect_timeout_s=0.5)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection((api.host, api.port), 0.5):
                break
            time.sleep(0.05)
        hop = Endpoint(host="127.0.0.1", port=free_port())
        client.create_proxy(name="bench", listen=hop.address, upstream=upstream.address)
        yield hop
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def load(binary: Path, url: str, seconds: float) -> tuple[list[float], list[int]]:
    """Latencies (ms) and statuses of ``seconds`` of load at RATE on ``url``."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
        subprocess.run(
            [str(binary), "-url", url, "-rate", str(RATE), "-duration", f"{seconds}s", "-out", out.name],
            check=True,
            timeout=seconds + 60,
        )
        rows = [line.split() for line in out]
    return [int(us) / 1000 for us, _ in rows], [int(status) for _, status in rows]


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def describe(name: str, latencies: list[float]) -> str:
    p50 = percentile_interval(latencies, 0.5)
    p99 = percentile_interval(latencies, 0.99)
    return (
        f"  {name:<14} n={len(latencies):>6}  p50 {p50.value:.3f} ms [{p50.low:.3f}, {p50.high:.3f}]"
        f"  p99 {p99.value:.3f} ms [{p99.low:.3f}, {p99.high:.3f}]"
    )


def added(hop: list[list[float]], direct: list[list[float]], name: str) -> tuple[float, float]:
    """The median over block pairs of what ``hop`` adds to ``direct``'s p50 and p99, printed
    with the range over the pairs."""
    figures = []
    for q in (0.5, 0.99):
        per_pair = sorted(percentile(h, q) - percentile(d, q) for h, d in zip(hop, direct, strict=True))
        figures.append(statistics.median(per_pair))
        print(f"  added by {name}: p{q * 100:g} {figures[-1]:.3f} ms "
              f"(median of {len(per_pair)} block pairs; from {per_pair[0]:.3f} to {per_pair[-1]:.3f})")  # fmt: skip
    return figures[0], figures[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per path, in all (default 20)")
    parser.add_argument("--rate-seconds", type=float, default=5.0, help="load with rate 0.3 (default 5)")
    args = parser.parse_args()
    generator = go_build("httpload", "doorbuster-httpload")
    print(f"before: {load_average()}")
    blocks: dict[str, list[list[float]]] = {"direct": [], "through stage": [], "via toxiproxy": []}
    unanswered = 0
    with (
        upstream(generator) as target,
        running_http_stage(Endpoint(host="127.0.0.1", port=free_port())) as api,
        toxiproxy_hop(target) as toxiproxy,
    ):
        hop = Endpoint(host="127.0.0.1", port=free_port())
        api.create_stage(name="bench", listen=hop, upstream=target)
        urls = {
            "direct": f"{target.url}/x", "through stage": f"{hop.url}/x", "via toxiproxy": f"{toxiproxy.url}/x",
        }  # fmt: skip
        for _ in range(BLOCKS_PER_PATH):
            for name, url in urls.items():
                block, statuses = load(generator, url, args.seconds / BLOCKS_PER_PATH)
                blocks[name].append(block)
                unanswered += sum(1 for s in statuses if s != 200)
        api.add_fault("bench", HttpError(status=503, rate=ERROR_RATE))
        _, statuses = load(generator, urls["through stage"], args.rate_seconds)
    print(f"after:  {load_average()}")

    print(
        f"\n(a) {RATE:g} requests/s on keep-alive connections, {args.seconds:g} s per path "
        f"in {BLOCKS_PER_PATH} blocks, alternating"
    )
    for name, per_block in blocks.items():
        print(describe(name, [value for block in per_block for value in block]))
    added_p50, added_p99 = added(blocks["through stage"], blocks["direct"], "the stage")
    added(blocks["via toxiproxy"], blocks["direct"], "Toxiproxy (for reference, no target)")

    errors = sum(1 for s in statuses if s == 503)
    answered = sum(1 for s in statuses if s in (200, 503))
    share = proportion_interval(errors, answered)
    print(f"\n(b) http_error rate {ERROR_RATE}: {errors} of {answered} answered were 503: "
          f"{share.value:.4f} [{share.low:.4f}, {share.high:.4f}] (95%)")  # fmt: skip
    return report(
        [
            Target("added p50", added_p50, "<", ADDED_P50_MS, " ms"),
            Target("added p99", added_p99, "<", ADDED_P99_MS, " ms"),
            Target("rate 0.3: 95% interval's low end", share.low, "<=", ERROR_RATE),
            Target("rate 0.3: 95% interval's high end", share.high, ">=", ERROR_RATE),
            Target("requests unanswered or failed without faults", unanswered, "<=", 0),
            Target("requests unanswered with rate 0.3", len(statuses) - answered, "<=", 0),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
