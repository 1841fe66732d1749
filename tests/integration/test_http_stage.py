"""The HTTP fault stage, the real binary (.tools/bin/doorbuster-httpfault, built by
scripts/setup), in front of a real HTTP/1.1 upstream on loopback, driven through its client
over one pooled keep-alive session: each fault kind does what it says, per request.

A rate is checked by the Wilson 95% interval of the observed share: a sample misses it by
chance one time in twenty, so a miss draws a second, independent sample, and only two misses
fail the test (one run in 400).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from harness.analysis.estimates import proportion_interval
from harness.faults.http_stage_client import HttpStageClient
from harness.faults.http_stage_server import running_http_stage
from model.errors import ConfigError
from model.http_faults import HttpAbort, HttpDelay, HttpError, HttpFailFirst, HttpFault, HttpMatch
from model.topology import Endpoint

STAGE_SOURCE = Path(__file__).resolve().parents[2] / "stage" / "httpfault"
API = Endpoint(host="127.0.0.1", port=24575)
LISTEN = Endpoint(host="127.0.0.1", port=24576)
STAGE = "orders"
BIG = os.urandom(5 * 1024 * 1024)
CHUNKS = [os.urandom(size) for size in (1, 100, 8191, 65536, 300_000)]


class Upstream(BaseHTTPRequestHandler):
    """``/big``: 5 MB with a Content-Length; ``/chunked``: chunks of odd sizes; ``/echo``
    (POST): the body back; anything else: its path."""

    protocol_version = "HTTP/1.1"  # keep-alive
    # Headers and body go in two writes: with Nagle on, the second waits for the ACK the
    # stage delays (40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/big":
            self._send(BIG)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in CHUNKS:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(self.path.encode())

    def do_POST(self) -> None:
        self._send(self.rfile.read(int(self.headers["Content-Length"])))


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A broken pipe is expected: http_abort cuts the upstream connection mid-body."""


@pytest.fixture(scope="module")
def stage() -> Iterator[HttpStageClient]:
    upstream = QuietServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    try:
        with running_http_stage(API) as client:
            client.create_stage(
                name=STAGE, listen=LISTEN, upstream=Endpoint(host="127.0.0.1", port=upstream.server_port)
            )
            yield client
    finally:
        upstream.shutdown()
        upstream.server_close()


@pytest.fixture
def session(stage: HttpStageClient) -> Iterator[requests.Session]:
    with requests.Session() as pooled:
        yield pooled
    stage.reset()


def with_fault(stage: HttpStageClient, fault: HttpFault) -> None:
    stage.add_fault(STAGE, fault)


def statuses(session: requests.Session, n: int, path: str = "/x") -> list[int]:
    return [session.get(f"{LISTEN.url}{path}", timeout=10).status_code for _ in range(n)]


def share_within_interval(draw: Callable[[], tuple[int, int]], rate: float) -> tuple[bool, str]:
    """Draw (hits, trials) up to twice; True when ``rate`` is in a draw's 95% interval."""
    seen = []
    for _ in range(2):
        hits, trials = draw()
        estimate = proportion_interval(hits, trials)
        seen.append(f"{hits}/{trials} [{estimate.low:.3f}, {estimate.high:.3f}]")
        if estimate.low <= rate <= estimate.high:
            return True, "; ".join(seen)
    return False, "; ".join(seen)


def test_go_tests_of_the_engine_pass() -> None:
    done = subprocess.run(
        ["go", "test", "-count=1", "."], cwd=STAGE_SOURCE, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_faults_chunked_and_large_bodies_pass_byte_identical(
    stage: HttpStageClient, session: requests.Session
) -> None:
    big = session.get(f"{LISTEN.url}/big", timeout=30)
    assert hashlib.sha256(big.content).digest() == hashlib.sha256(BIG).digest()
    chunked = session.get(f"{LISTEN.url}/chunked", timeout=30)
    assert chunked.headers.get("Transfer-Encoding") == "chunked"
    assert chunked.content == b"".join(CHUNKS)
    echoed = session.post(f"{LISTEN.url}/echo", data=BIG, timeout=30)
    assert echoed.content == BIG


def test_an_error_rate_is_a_share_of_requests_on_one_keep_alive_connection(
    stage: HttpStageClient, session: requests.Session
) -> None:
    with_fault(stage, HttpError(status=503, rate=0.3, body="try later"))

    def draw() -> tuple[int, int]:
        got = statuses(session, 1000)
        assert set(got) <= {200, 503}
        return got.count(503), len(got)

    within, seen = share_within_interval(draw, 0.3)
    assert within, f"0.3 outside the 95% interval of the share of 503s: {seen}"
    assert session.get(f"{LISTEN.url}/x", timeout=10).status_code in (200, 503)
    [listed] = stage.faults(STAGE)
    assert listed["type"] == "http_error" and listed["applied"] > 0


def test_fail_first_fails_exactly_the_first_count(stage: HttpStageClient, session: requests.Session) -> None:
    with_fault(stage, HttpFailFirst(count=5, status=502))
    assert statuses(session, 12) == [502] * 5 + [200] * 7


def test_abort_gives_no_answer_or_part_of_the_body(stage: HttpStageClient, session: requests.Session) -> None:
    with_fault(stage, HttpAbort(name="cut", match=HttpMatch(path_prefix="/x")))
    with pytest.raises(requests.ConnectionError):
        session.get(f"{LISTEN.url}/x", timeout=10)
    stage.remove_fault(STAGE, "cut")
    with_fault(stage, HttpAbort(after_bytes=1000))
    connection = http.client.HTTPConnection(LISTEN.host, LISTEN.port, timeout=10)
    try:
        connection.request("GET", "/big")
        response = connection.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert cut.value.partial == BIG[:1000]
    finally:
        connection.close()


@pytest.mark.parametrize("where", ["request", "response"])
def test_delay_adds_the_latency(stage: HttpStageClient, session: requests.Session, where: str) -> None:
    def elapsed(path: str) -> float:
        start = time.perf_counter()
        assert session.get(f"{LISTEN.url}{path}", timeout=10).status_code == 200
        return time.perf_counter() - start

    with_fault(stage, HttpDelay(latency_ms=250, where=where, match=HttpMatch(path_prefix="/slow")))
    slow = sorted(elapsed("/slow/1") for _ in range(5))
    fast = sorted(elapsed("/fast") for _ in range(5))
    assert 0.25 <= slow[0] < 0.25 + 0.5, slow
    assert fast[2] < 0.1, fast


def test_a_path_prefix_match_hits_only_that_path(stage: HttpStageClient, session: requests.Session) -> None:
    with_fault(stage, HttpError(status=500, match=HttpMatch(path_prefix="/pay", method="GET")))
    assert statuses(session, 20, "/pay/card") == [500] * 20
    assert statuses(session, 20, "/orders") == [200] * 20
    assert session.post(f"{LISTEN.url}/echo", data=b"pay", timeout=10).status_code == 200


def test_the_stage_refuses_what_the_model_refuses(stage: HttpStageClient) -> None:
    with pytest.raises(ConfigError, match="listen"):
        stage.create_stage(name="open", listen=Endpoint(host="0.0.0.0", port=24577), upstream=LISTEN)
    for body, named in [
        ({"type": "http_error", "attributes": {"status": 200}}, "status"),
        ({"type": "http_delay", "attributes": {"latency_ms": 1, "rate": 3}}, "rate"),
        ({"type": "http_fail_first", "attributes": {}}, "count"),
        ({"type": "http_abort", "attributes": {"after_bytes": -1}}, "after_bytes"),
    ]:
        response = requests.post(f"{API.url}/stages/{STAGE}/faults", json=body, timeout=5)
        assert response.status_code == 400 and named in response.json()["error"], response.text
    with pytest.raises(ConfigError, match="no stage"):
        stage.add_fault("nowhere", HttpAbort())
