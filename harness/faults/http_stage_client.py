"""A client for one HTTP fault stage server's admin API (``stage/httpfault``); every call is
bounded in time.

The API is modelled on Toxiproxy's: a stage is one HTTP hop (``name``, ``listen`` on
loopback, ``upstream``), and each stage holds HTTP faults (:mod:`model.http_faults`) decided
per request.  Errors are translated in :meth:`HttpStageClient._request`:
:class:`HttpStageUnavailable` when the API does not answer or fails, :class:`ConfigError` when
it refuses what it was asked (its message names the attribute).
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from harness.faults.api_errors import call_timeouts, unanswered_calls
from model.errors import ConfigError, HttpStageUnavailable
from model.http_faults import HttpFault
from model.topology import Endpoint

__all__ = ["HttpStageClient"]

SERVER = "The HTTP fault stage"


class HttpStageClient:
    """One HTTP fault stage server's API at ``endpoint``.

    ``timeout_s`` bounds the wait for each answer; the connect timeout is the smaller of it
    and ``connect_timeout_s``.
    """

    def __init__(self, endpoint: Endpoint, *, timeout_s: float = 5.0, connect_timeout_s: float = 2.0) -> None:
        self.endpoint = endpoint
        self.timeout = call_timeouts(timeout_s, connect_timeout_s)
        self._session = requests.Session()
        # A Session is not documented as thread-safe.
        self._lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    # -- the API -----------------------------------------------------------------------
    def version(self) -> str:
        return self._request("GET", "/version", "asking its version").text.strip()

    def stages(self) -> dict[str, Any]:
        """``{name: {name, listen, upstream, faults}}``."""
        return self._json("GET", "/stages", "listing stages")  # type: ignore[no-any-return]

    def create_stage(self, *, name: str, listen: Endpoint, upstream: Endpoint) -> None:
        body = {"name": name, "listen": listen.address, "upstream": upstream.address}
        self._request("POST", "/stages", f"creating stage {name}", json_body=body)

    def delete_stage(self, name: str) -> None:
        self._request("DELETE", f"/stages/{name}", f"deleting stage {name}")

    def faults(self, stage: str) -> list[dict[str, Any]]:
        """The faults in force on ``stage``, in the order they were added, each as
        ``{name, type, attributes, match?, applied}`` (``applied``: requests it took)."""
        return self._json("GET", f"/stages/{stage}/faults", f"listing faults of {stage}")  # type: ignore[no-any-return]

    def add_fault(self, stage: str, fault: HttpFault) -> None:
        self._request(
            "POST", f"/stages/{stage}/faults", f"adding {fault.kind} to {stage}", json_body=fault.as_json()
        )

    def remove_fault(self, stage: str, name: str) -> None:
        self._request("DELETE", f"/stages/{stage}/faults/{name}", f"removing {name} from {stage}")

    def reset(self) -> None:
        """Every fault of every stage removed; the stages stay."""
        self._request("POST", "/reset", "reset")

    # -- errors, translated ----------------------------------------------------------------
    def _request(self, method: str, path: str, what: str, *, json_body: Any = None) -> requests.Response:
        address = self.endpoint.address
        with unanswered_calls(SERVER, address, what, self.timeout, HttpStageUnavailable), self._lock:
            response = self._session.request(
                method, f"{self.endpoint.url}{path}", json=json_body, timeout=self.timeout
            )
        if response.status_code in (400, 404, 409):
            raise ConfigError(f"{SERVER} refused {what}: {_error_text(response)}")
        if not response.ok:
            raise HttpStageUnavailable(
                f"{SERVER} at {self.endpoint.address} failed {what}: HTTP {response.status_code} "
                f"{_error_text(response)}"
            )
        return response

    def _json(self, method: str, path: str, what: str) -> Any:
        response = self._request(method, path, what)
        try:
            return response.json()
        except ValueError:
            raise HttpStageUnavailable(
                f"{SERVER} at {self.endpoint.address} answered {what} with something not JSON: "
                f"{response.text[:200]!r}"
            ) from None


def _error_text(response: requests.Response) -> str:
    """The ``error`` of the stage's JSON error body, else the body as it came."""
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
