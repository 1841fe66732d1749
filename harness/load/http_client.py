"""The shopper's HTTP/1.1 client: keep-alive connections to one lane's target, a request
written in one piece and its answer read with as little Python as HTTP allows.

Per request a shopper needs the status, the answer's bytes and a header or two; a general
client (geventhttpclient's, under Locust's ``FastHttpUser`` too) spends more on each request
than the rest of a shopper together (case-insensitive header objects, a parser calling back into
Python for every header, a connection pool with its own locks). This one handles what servers
answer: ``Content-Length``, chunked transfer, a body to the connection's end, interim ``1xx``
answers, ``Connection: close``; and a kept-alive connection the server closed meanwhile is
retried once on a new one (nothing of the answer had come, so nothing was lost).

An answer carries when it arrived: the kernel's receive time of its last bytes (Linux's
``SO_TIMESTAMP``), so a generator busy reading a burst of answers (the end of a stall) does
not add its own backlog to the latency it records.

It uses the standard ``socket`` module: in the locustfile gevent has patched it, so each
request waits cooperatively; here in the tests it is plain blocking sockets.
"""

from __future__ import annotations

import platform
import socket
import struct
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SO_TIMESTAMP", "Answer", "BadAnswer", "ClosedBeforeAnswer", "KeepAliveClient", "read_answer"]

# A head larger than this is not an answer from a server under test.
_MAX_HEAD = 64 * 1024
_READ = 64 * 1024


class BadAnswer(OSError):
    """What came back is not an HTTP answer: counted as no answer, as a broken connection is."""


class ClosedBeforeAnswer(OSError):
    """The connection closed before any byte of an answer came."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    """An answer: its status, its headers (names lowercased), its body, read in full, and when
    it arrived."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    # When its last bytes arrived (epoch seconds): the kernel's receive time, else when read.
    arrived: float

    def read(self) -> bytes:
        return self.body

    def get(self, key: str, default: str | None = None) -> str | None:
        """A header by name, in any case."""
        return self.headers.get(key.lower(), default)


# A target's address resolved: (family, socket address), as getaddrinfo gives them.
Resolved = tuple[int, Any]


def _resolve(host: str, port: int) -> Resolved:
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
    return family, sockaddr


class KeepAliveClient:
    """Requests to one ``host:port``, each on an idle kept-alive connection or a new one.

    Connections are as many as requests at once (a journey sends one request at a time, so a
    lane never has more than its journeys in flight); ``timeout`` bounds every wait for the
    answer and ``connect_timeout`` the connection.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        connect_timeout: float,
        resolve: Callable[[str, int], Resolved] = _resolve,
    ) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._resolve = resolve
        # Resolved at the first connection, not at each (gevent resolves in a thread pool),
        # and again after a connection fails.
        self._resolved: Resolved | None = None
        self._idle: list[socket.socket] = []
        self._head = f"Host: {host}:{port}\r\nUser-Agent: doorbuster\r\n"

    def request(
        self, method: str, request_uri: str, body: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> Answer:
        """Send one request and read its whole answer; OSError (a timeout, a refused or broken
        connection, :class:`BadAnswer`) when there is none."""
        lines = [f"{method} {request_uri} HTTP/1.1\r\n", self._head]
        lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}\r\n")
        lines.append("\r\n")
        data = "".join(lines).encode("latin-1") + (body or b"")
        while True:
            reused = bool(self._idle)
            sock = self._idle.pop() if reused else self._open()
            try:
                try:
                    # One send writes a request this small; sendall only for what is left (gevent's
                    # sendall sets up a timeout object at every call).
                    sent = sock.send(data)
                    if sent < len(data):
                        sock.sendall(data[sent:])
                except (ConnectionResetError, BrokenPipeError) as exc:
                    raise ClosedBeforeAnswer(f"the connection closed as the request was sent: {exc}") from exc
                answer, keep = read_answer(sock, method)
            except ClosedBeforeAnswer:
                sock.close()
                if reused:  # closed by the server while it was idle: nothing was answered
                    continue
                raise
            except BaseException:
                sock.close()
                raise
            if keep:
                self._idle.append(sock)
            else:
                sock.close()
            return answer

    def get(self, request_uri: str) -> Answer:
        return self.request("GET", request_uri)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _open(self) -> socket.socket:
        if self._resolved is None:
            self._resolved = self._resolve(*self.address)
        family, sockaddr = self._resolved
        # The socket module looked up now: gevent patches it after this module is imported.
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.connect_timeout)
            sock.connect(sockaddr)
        except BaseException:
            sock.close()
            self._resolved = None
            raise
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if SO_TIMESTAMP is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        return sock


# The kernel's receive time of what each read returns: SO_TIMESTAMP, a struct timeval. Python
# does not name the option; Linux numbers it 29 on the usual architectures.
SO_TIMESTAMP: int | None = getattr(socket, "SO_TIMESTAMP", None)
if SO_TIMESTAMP is None and sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64"):
    SO_TIMESTAMP = 29
_TIMEVAL = struct.Struct("@ll")
_ANCILLARY = socket.CMSG_SPACE(_TIMEVAL.size)


class _Reader:
    """Reads a connection, keeping when the last bytes read had arrived: the kernel's time
    where it gives one (the answer came then, however late a busy generator reads it), else the
    clock when they were read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.arrived = 0.0

    def recv(self, size: int) -> bytes:
        if SO_TIMESTAMP is None:
            data = self.sock.recv(size)
            self.arrived = time.time()
            return data
        data, ancillary, _, _ = self.sock.recvmsg(size, _ANCILLARY)
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(value) >= _TIMEVAL.size:
                seconds, micros = _TIMEVAL.unpack_from(value)
                self.arrived = seconds + micros / 1e6
                return data
        self.arrived = time.time()
        return data


def read_answer(sock: socket.socket, method: str) -> tuple[Answer, bool]:
    """The answer to the request just sent on ``sock``, and whether the connection can be used
    again."""
    reader = _Reader(sock)
    buf = b""
    while True:  # interim 1xx answers come before the answer
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            if len(buf) > _MAX_HEAD:
                raise BadAnswer(f"no end of the answer's head in {len(buf)} bytes")
            try:
                chunk = reader.recv(_READ)
            except ConnectionResetError as exc:
                if buf:
                    raise
                raise ClosedBeforeAnswer(f"the connection was reset before an answer: {exc}") from exc
            if not chunk:
                if buf:
                    raise BadAnswer("the connection closed in the answer's head")
                raise ClosedBeforeAnswer("the connection closed before an answer")
            buf += chunk
            end = buf.find(b"\r\n\r\n", max(0, len(buf) - len(chunk) - 3))
        head, buf = buf[:end].decode("latin-1"), buf[end + 4 :]
        status_line, *header_lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        try:
            code = int(rest[:3])
        except ValueError:
            raise BadAnswer(f"not an HTTP status line: {status_line[:80]!r}") from None
        if not version.startswith("HTTP/") or not 100 <= code <= 599:
            raise BadAnswer(f"not an HTTP status line: {status_line[:80]!r}")
        if 100 <= code <= 199:
            continue
        break
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if method == "HEAD" or code in (204, 304):
        return Answer(status_code=code, headers=headers, body=b"", arrived=reader.arrived), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(reader, buf)
        return Answer(status_code=code, headers=headers, body=body, arrived=reader.arrived), keep
    length = headers.get("content-length")
    if length is None:  # the body is what comes until the server closes
        parts = [buf]
        while chunk := reader.recv(_READ):
            parts.append(chunk)
        return Answer(status_code=code, headers=headers, body=b"".join(parts), arrived=reader.arrived), False
    try:
        size = int(length)
    except ValueError:
        raise BadAnswer(f"Content-Length {length[:40]!r} is not a number") from None
    while len(buf) < size:
        chunk = reader.recv(max(_READ, size - len(buf)))
        if not chunk:
            raise BadAnswer(f"the connection closed {len(buf)} bytes into a body of {size}")
        buf += chunk
    return Answer(status_code=code, headers=headers, body=buf[:size], arrived=reader.arrived), keep


def _read_chunked(reader: _Reader, buf: bytes) -> bytes:
    """A chunked body, from what was read already (``buf``) and the socket."""
    body: list[bytes] = []

    def line() -> str:
        nonlocal buf
        while (end := buf.find(b"\r\n")) < 0:
            if len(buf) > _MAX_HEAD:
                raise BadAnswer("a chunk's size line without an end")
            buf += _more(reader)
        text, buf = buf[:end].decode("latin-1"), buf[end + 2 :]
        return text

    while True:
        size_text = line().partition(";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadAnswer(f"a chunk size {size_text[:40]!r} is not a hex number") from None
        if size == 0:
            while line():  # trailers, up to the empty line that ends the body
                pass
            return b"".join(body)
        while len(buf) < size + 2:
            buf += _more(reader)
        body.append(buf[:size])
        buf = buf[size + 2 :]


def _more(reader: _Reader) -> bytes:
    chunk = reader.recv(_READ)
    if not chunk:
        raise BadAnswer("the connection closed in a chunked body")
    return chunk
