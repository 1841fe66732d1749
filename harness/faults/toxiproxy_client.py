"""A client for one Toxiproxy server's HTTP API; every call is bounded in time.

toxiproxy-python can not be the client: it keeps the server's address on a class
(``APIConsumer.host``/``port``), shared by every caller in the process, so two servers (or the
supervisor's exporter thread beside its main loop) can send a call to the wrong one; and it
calls ``requests`` without a timeout, so an API that accepts the connection and never answers
hangs the caller for good.  Here each server address gets its own client, with its own
``requests.Session`` and a (connect, read) timeout on every call.  Of toxiproxy-python only
``validate_response`` is kept: it maps Toxiproxy's status codes to its exceptions, without I/O.

Every error is translated in one place, :meth:`ToxiproxyClient._request`:
:class:`ToxiproxyUnavailable` (naming the address and what timed out) when the API does not
answer or fails, :class:`ConfigError` when it refuses what it was asked.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import requests
from toxiproxy.api import validate_response
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.faults.api_errors import call_timeouts, unanswered_calls
from model.errors import ConfigError, ToxiproxyUnavailable
from model.topology import Endpoint

__all__ = ["ToxiproxyClient"]


class ToxiproxyClient:
    """One Toxiproxy server's API at ``endpoint``.

    ``timeout_s`` bounds the wait for each answer; the connect timeout is the smaller of it
    and ``connect_timeout_s`` (a loopback server that is up accepts at once).
    """

    def __init__(self, endpoint: Endpoint, *, timeout_s: float = 5.0, connect_timeout_s: float = 2.0) -> None:
        self.endpoint = endpoint
        self.timeout = call_timeouts(timeout_s, connect_timeout_s)
        self._session = requests.Session()
        # A Session is not documented as thread-safe; the supervisor's exporter may be scraped
        # from several threads at once.  Each holder is bounded by the timeouts.
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.endpoint.url

    def close(self) -> None:
        self._session.close()

    # -- the API -----------------------------------------------------------------------
    def version(self) -> str:
        return self._request("GET", "/version", "asking its version").text.strip()

    def proxies(self) -> dict[str, Any]:
        """``{name: {name, listen, upstream, enabled, toxics}}``."""
        what = "listing proxies"
        data: dict[str, Any] = self._json(self._request("GET", "/proxies", what), what)
        return data

    def create_proxy(self, *, name: str, listen: str, upstream: str, enabled: bool = True) -> None:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        self._request("POST", "/proxies", f"creating proxy {name}", json_body=body)

    def delete_proxy(self, name: str) -> None:
        self._request("DELETE", f"/proxies/{name}", f"deleting proxy {name}")

    def populate(self, wanted: list[dict[str, Any]]) -> None:
        """Create each proxy of ``wanted`` that is missing, and replace any that listens or
        points elsewhere (toxiproxy-python's ``populate``, on this client)."""
        existing = self.proxies()
        for proxy in wanted:
            found = existing.get(proxy["name"])
            if found is not None and (
                found.get("upstream") != proxy["upstream"] or found.get("listen") != proxy["listen"]
            ):
                self.delete_proxy(proxy["name"])
                found = None
            if found is None:
                self.create_proxy(**proxy)

    def set_enabled(self, proxy: str, *, enabled: bool) -> None:
        verb = "enabling" if enabled else "disabling"
        self._request("POST", f"/proxies/{proxy}", f"{verb} {proxy}", json_body={"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        *,
        type: str,
        name: str,
        stream: str,
        toxicity: float,
        attributes: dict[str, int],
    ) -> None:
        body = {"name": name, "type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        self._request("POST", f"/proxies/{proxy}/toxics", f"adding {type} to {proxy}", json_body=body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._request("DELETE", f"/proxies/{proxy}/toxics/{name}", f"removing {name} from {proxy}")

    def reset(self) -> None:
        """Every proxy enabled, every toxic gone."""
        self._request("POST", "/reset", "reset")

    # -- errors, translated ----------------------------------------------------------------
    def _request(self, method: str, path: str, what: str, *, json_body: Any = None) -> requests.Response:
        try:
            address = self.endpoint.address
            with unanswered_calls("Toxiproxy", address, what, self.timeout, ToxiproxyUnavailable), self._lock:
                response = self._session.request(
                    method, f"{self.url}{path}", json=json_body, timeout=self.timeout
                )
            validate_response(response)
        except InvalidToxic as exc:
            raise ConfigError(f"Toxiproxy refused {what}: {_error_text(exc)}") from exc
        except NotFound as exc:
            raise ConfigError(f"Toxiproxy has no such thing ({what}): {_error_text(exc)}") from exc
        except ProxyExists as exc:
            raise ConfigError(f"Toxiproxy says it exists already ({what}): {_error_text(exc)}") from exc
        if not response.ok:
            raise ToxiproxyUnavailable(
                f"Toxiproxy at {self.endpoint.address} failed {what}: HTTP {response.status_code} "
                f"{_error_text(Exception(response.content))}"
            )
        return response

    def _json(self, response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ToxiproxyUnavailable(
                f"Toxiproxy at {self.endpoint.address} answered {what} with something not JSON: "
                f"{response.text[:200]!r}"
            ) from None


def _error_text(exc: Exception) -> str:
    """The ``error`` of Toxiproxy's JSON error body, else the body as it came."""
    raw = exc.args[0] if exc.args else exc
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    try:
        return str(json.loads(raw).get("error", raw))  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        return str(raw)
