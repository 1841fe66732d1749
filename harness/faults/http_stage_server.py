"""The HTTP fault stage server as a process of ours: started on a loopback API address,
ready when its API answers, always stopped."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from harness.binaries import find_binary
from harness.faults.http_stage_client import HttpStageClient
from model.errors import HttpStageUnavailable, StartFailed
from model.topology import Endpoint

__all__ = ["running_http_stage"]


@contextmanager
def running_http_stage(api: Endpoint, *, start_timeout_s: float = 10.0) -> Iterator[HttpStageClient]:
    """Start ``doorbuster-httpfault`` with its API on ``api``, yield a client once the API
    answers, and stop the process (and with it every stage) on the way out."""
    binary = find_binary("doorbuster-httpfault")
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([str(binary), "-api", api.address], stdout=log, stderr=subprocess.STDOUT)
        client = HttpStageClient(api, timeout_s=2.0, connect_timeout_s=0.5)
        try:
            deadline = time.monotonic() + start_timeout_s
            while True:
                try:
                    client.version()
                    break
                except HttpStageUnavailable:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        tail = log.read()[-2000:].decode(errors="replace")
                        raise StartFailed(
                            f"the HTTP fault stage ({binary}) did not answer on {api.address} "
                            f"within {start_timeout_s:g}s: {tail}"
                        ) from None
                    time.sleep(0.05)
            yield client
        finally:
            client.close()
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
