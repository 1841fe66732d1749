"""The shopper's HTTP client against a scripted server on loopback: each connection it accepts
answers its requests with the bytes the test gives, or closes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from harness.load.http_client import SO_TIMESTAMP, BadAnswer, ClosedBeforeAnswer, KeepAliveClient, read_answer

CLOSE = b""  # in a script: close the connection instead of answering
HANG = b"hang"  # in a script: answer nothing for a second, then close
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"id": "1"}'


@dataclass
class ScriptedServer:
    """Connection i answers its requests with ``scripts[i]`` in turn (CLOSE: closes instead,
    HANG: answers late), then closes; ``requests[i]`` is what connection i received, one request at a time."""

    scripts: list[list[bytes]]
    requests: list[list[bytes]] = field(default_factory=list)
    port: int = 0


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            while len(body) < int(line.split(b":")[1]):
                body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@contextmanager
def scripted(scripts: list[list[bytes]]) -> Iterator[ScriptedServer]:
    server = ScriptedServer(scripts)
    listener = socket.create_server(("127.0.0.1", 0))
    server.port = listener.getsockname()[1]

    def serve() -> None:
        for script in scripts:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            received: list[bytes] = []
            server.requests.append(received)
            with conn:
                for answer in script:
                    request = _read_request(conn)
                    if not request:
                        break
                    received.append(request)
                    if answer is CLOSE:
                        break
                    if answer is HANG:
                        time.sleep(1.0)
                        break
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        listener.close()
        thread.join(timeout=5)


def _client(server: ScriptedServer, timeout: float = 5.0) -> KeepAliveClient:
    return KeepAliveClient("127.0.0.1", server.port, timeout=timeout, connect_timeout=5.0)


def test_a_request_goes_in_one_piece_and_the_connection_is_kept_alive() -> None:
    with scripted([[OK, OK]]) as server:
        client = _client(server)
        first = client.request("POST", "/orders", body=b'{"a": 1}', headers={"X-Intended-Start": "1.5"})
        second = client.get("/orders/1")
        client.close()
    assert (first.status_code, first.read(), first.get("content-type")) == (
        200,
        b'{"id": "1"}',
        "application/json",
    )
    assert first.get("Content-Type") == first.get("CONTENT-TYPE") == "application/json"
    assert second.status_code == 200
    assert len(server.requests) == 1, "both requests on one connection"
    assert (
        server.requests[0][0]
        == (
            f"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUser-Agent: doorbuster\r\n"
            'X-Intended-Start: 1.5\r\nContent-Length: 8\r\n\r\n{"a": 1}'
        ).encode()
    )
    assert server.requests[0][1].startswith(b"GET /orders/1 HTTP/1.1\r\n")
    assert b"Content-Length" not in server.requests[0][1]


def test_a_post_without_a_body_says_so() -> None:
    with scripted([[OK]]) as server:
        _client(server).request("POST", "/orders")
    assert b"Content-Length: 0\r\n" in server.requests[0][0]


def test_a_chunked_answer_with_extensions_and_trailers() -> None:
    chunked = (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nLocation: /orders/7\r\n\r\n"
        b'4;ext=1\r\n{"id\r\n7\r\n": "7"}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    with scripted([[chunked, OK]]) as server:
        client = _client(server)
        answer = client.request("POST", "/orders", body=b"{}")
        again = client.get("/x")
    assert (answer.status_code, answer.read(), answer.get("location")) == (202, b'{"id": "7"}', "/orders/7")
    assert again.status_code == 200 and len(server.requests) == 1


def test_an_answer_without_a_length_ends_with_its_connection() -> None:
    until_close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    with scripted([[until_close], [OK]]) as server:
        client = _client(server)
        assert client.get("/a").read() == b"all of it"
        assert client.get("/b").status_code == 200
    assert len(server.requests) == 2, "the first connection is not used again"


def test_interim_answers_are_skipped_and_no_content_has_no_body() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    with scripted([[interim, OK]]) as server:
        client = _client(server)
        answer = client.request("DELETE", "/orders/1")
        assert (answer.status_code, answer.read()) == (204, b"")
        assert client.get("/x").status_code == 200


def test_connection_close_is_honoured() -> None:
    closing = b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy"
    with scripted([[closing], [OK]]) as server:
        client = _client(server)
        assert client.get("/a").status_code == 503
        assert client.get("/b").status_code == 200
    assert [len(r) for r in server.requests] == [1, 1]


def test_a_kept_alive_connection_the_server_closed_is_retried_once_on_a_new_one() -> None:
    with scripted([[OK, CLOSE], [OK]]) as server:
        client = _client(server)
        assert client.get("/a").status_code == 200
        assert client.request("POST", "/orders", body=b"{}").status_code == 200
    # The closed connection had the request but answered nothing; the new one answered it.
    assert [len(r) for r in server.requests] == [2, 1]


def test_a_new_connection_closed_before_an_answer_is_no_answer_and_not_retried() -> None:
    with scripted([[CLOSE], [OK]]) as server:
        client = _client(server)
        with pytest.raises(ClosedBeforeAnswer):
            client.request("POST", "/orders", body=b"{}")
    assert [len(r) for r in server.requests] == [1]


def test_no_answer_in_time_is_a_timeout() -> None:
    with scripted([[HANG]]) as server, pytest.raises(TimeoutError):
        _client(server, timeout=0.2).get("/slow")


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2xx Fine\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
    ],
)
def test_what_is_not_an_http_answer_is_refused_as_no_answer(garbage: bytes) -> None:
    with scripted([[garbage]]) as server, pytest.raises(BadAnswer) as caught:
        _client(server).get("/x")
    assert isinstance(caught.value, OSError)


def test_refused_connection_is_an_os_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        KeepAliveClient("127.0.0.1", port, timeout=1.0, connect_timeout=1.0).get("/")


def test_the_target_is_resolved_once_and_again_after_a_failed_connection() -> None:
    resolved: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> tuple[int, tuple[str, int]]:
        resolved.append((host, port))
        return socket.AF_INET, ("127.0.0.1", port)

    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    with scripted([[closing], [OK]]) as server:
        client = KeepAliveClient("shop.test", server.port, timeout=5.0, connect_timeout=5.0, resolve=resolve)
        client.get("/a")
        client.get("/b")  # on a second connection
    assert len(server.requests) == 2 and resolved == [("shop.test", server.port)]
    assert b"Host: shop.test:" in server.requests[0][0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    failing = KeepAliveClient("shop.test", closed_port, timeout=1.0, connect_timeout=1.0, resolve=resolve)
    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            failing.get("/")
    assert resolved[1:] == [("shop.test", closed_port)] * 2


@pytest.mark.skipif(SO_TIMESTAMP is None, reason="no SO_TIMESTAMP here: answers are timed when read")
def test_an_answer_read_late_arrived_when_the_kernel_received_it() -> None:
    assert SO_TIMESTAMP is not None
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        client.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        server, _ = listener.accept()
        with client, server:
            before = time.time()
            server.sendall(OK)
            time.sleep(0.3)  # a generator busy elsewhere reads it later
            answer, keep = read_answer(client, "GET")
            read = time.time()
    assert answer.read() == b'{"id": "1"}' and keep
    # Stamped on arrival, not 0.3 s later when read (a hundredth of slack for the two clocks' reads).
    assert before - 0.01 <= answer.arrived < read - 0.2
