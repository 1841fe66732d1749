"""A process's metrics page on loopback, for the tests of the readers of it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["MetricsServer"]


class MetricsServer:
    """Serves ``text`` at ``path`` (404 elsewhere) on the first free port of ``ports`` (0: one
    the OS chose).  ``trickle`` sends it a byte at a time, slowly, as a process that hangs
    mid-answer; ``stop()`` makes it a process that is gone."""

    def __init__(self, text: str = "", *, path: str = "/metrics", ports: Iterable[int] = (0,)) -> None:
        self.text, self.path, self.trickle = text, path, False
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != served.path:
                    self.send_error(404)
                    return
                body = served.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not served.trickle:
                    self.wfile.write(body)
                    return
                with contextlib.suppress(ConnectionError):  # the reader gave up: as it should
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.05)

            def log_message(self, *args: object) -> None:
                pass

        tried = list(ports)
        for port in tried:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        else:
            raise OSError(f"no free port among {tried[0]}-{tried[-1]}")
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
