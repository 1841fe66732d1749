"""A system under test, as data: its services, the hops between them, and the lanes shoppers use.

A system file names the **services** doorbuster starts (``command``, an argument list) or only
watches (``url``, a service the user runs), the **dependencies** (TCP hops to an upstream
``host:port``, each behind a Toxiproxy proxy named ``<lane>-<dependency>``) and the **lanes**
(the request a shopper sends, and for a queue-backed lane how to follow the answer until done).
``builtin: checkout`` is the paired demo, whose services come from the stack settings instead.

Strings may name addresses only doorbuster knows, as placeholders::

    {host}            the loopback address everything binds
    {port:NAME}       the port doorbuster picked for managed service NAME
    {service:NAME}    host:port of service NAME
    {proxy:NAME}      host:port of the proxy in front of dependency NAME (or LANE-NAME)
    {root} {state}    the project's root, the stack's state directory (commands, env only)
    {python}          the Python running doorbuster (commands only)

and a lane's body may use ``{request_id}``, ``{customer}``, ``{sku}`` and ``{qty}``, drawn for
each request.  JSON's own braces are left alone: only ``{name}`` and ``{name:arg}`` are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.errors import ConfigError

__all__ = [
    "BODY_PLACEHOLDERS",
    "BUILTIN_SERVICES",
    "DependencySpec",
    "FollowSpec",
    "LaneSpec",
    "ServiceSpec",
    "SystemSpec",
    "as_format",
    "expand",
    "placeholders",
]

Lane = Literal["sync", "async"]
_NAME = r"^[a-z][a-z0-9-]{0,30}$"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::([A-Za-z0-9_.-]+))?\}")
# Placeholders each kind of string may use.
_ADDRESSES = frozenset({"host", "port", "service", "proxy"})
_COMMAND = _ADDRESSES | {"root", "state", "python"}
BODY_PLACEHOLDERS = frozenset({"request_id", "customer", "sku", "qty"})
_METHODS = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
# What a builtin system's lanes may name with {service:...}: the checkout's order services.
BUILTIN_SERVICES: tuple[str, ...] = ("order-sync", "order-async")


def placeholders(text: str) -> list[tuple[str, str | None]]:
    """The ``(name, argument)`` of each placeholder in ``text``, in order."""
    return [(m.group(1), m.group(2)) for m in _PLACEHOLDER.finditer(text)]


def expand(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced by ``values["name"]`` or ``values["name:arg"]``."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1) if match.group(2) is None else f"{match.group(1)}:{match.group(2)}"
        if key not in values:
            raise ConfigError(f"{match.group(0)} in {text!r} names nothing known here")
        return values[key]

    return _PLACEHOLDER.sub(one, text)


def as_format(text: str) -> str:
    """``text`` as a ``str.format`` string whose fields are its placeholders, parsed once: with
    the same values it formats as :func:`expand` expands. For placeholders without a name (a
    body's); ValueError for one with.

    >>> as_format('{"id": "{request_id}", "n": 1}').format_map({"request_id": "r1"})
    '{"id": "r1", "n": 1}'
    """
    out, last = [], 0
    for match in _PLACEHOLDER.finditer(text):
        if match.group(2) is not None:
            raise ValueError(f"{match.group(0)}: a format string's fields take no name")
        out += [text[last : match.start()].replace("{", "{{").replace("}", "}}"), "{", match.group(1), "}"]
        last = match.end()
    out.append(text[last:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def _check_names(text: str, allowed: Iterable[str], where: str) -> None:
    allowed = frozenset(allowed)
    for name, arg in placeholders(text):
        if name not in allowed:
            raise ValueError(f"{where}: {{{name}}} is not a placeholder here; known: {sorted(allowed)}")
        needs_arg = name in ("port", "service", "proxy")
        if needs_arg and arg is None:
            raise ValueError(f"{where}: {{{name}}} needs a name, as in {{{name}:NAME}}")
        if not needs_arg and arg is not None:
            raise ValueError(f"{where}: {{{name}:{arg}}} takes no name")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServiceSpec(_Frozen):
    """A process of the system: started by doorbuster (``command``) or run by the user (``url``)."""

    name: str = Field(pattern=_NAME)
    command: tuple[str, ...] | None = None
    url: str | None = None
    # A managed service's port; doorbuster picks one from ports.base when it is not given.
    port: int | None = Field(default=None, ge=1024, le=65535)
    # Run in order before each start (a schema migration, say); they must be idempotent.
    setup: tuple[tuple[str, ...], ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    # ``tcp`` (a connect succeeds) or an HTTP path that answers 2xx when the service is ready.
    health: str = "tcp"
    # The path Prometheus scrapes, if the service has metrics.
    metrics: str | None = None

    @model_validator(mode="after")
    def _one_way_to_run(self) -> ServiceSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"service {self.name}: give either command (a list) or url, not both or none")
        if self.command is not None and (not self.command or not all(self.command)):
            raise ValueError(f"service {self.name}: command must be a non-empty list of non-empty strings")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
                raise ValueError(f"service {self.name}: url must be http(s)://host:port, got {self.url!r}")
            if self.setup or self.env or self.port is not None:
                raise ValueError(
                    f"service {self.name}: setup, env and port are for a service doorbuster starts"
                )
        for i, step in enumerate(self.setup):
            if not step or not all(step):
                raise ValueError(f"service {self.name}: setup.{i} must be a non-empty list of strings")
        if self.health != "tcp" and not self.health.startswith("/"):
            raise ValueError(f"service {self.name}: health is tcp or an HTTP path starting with /")
        if self.metrics is not None and not self.metrics.startswith("/"):
            raise ValueError(f"service {self.name}: metrics is an HTTP path starting with /")
        return self

    @property
    def managed(self) -> bool:
        return self.command is not None

    def strings(self) -> list[tuple[str, str]]:
        """Every string that may hold placeholders, with where it is."""
        found = [(f"command.{i}", s) for i, s in enumerate(self.command or ())]
        found += [(f"setup.{i}.{j}", s) for i, step in enumerate(self.setup) for j, s in enumerate(step)]
        found += [(f"env.{key}", value) for key, value in self.env.items()]
        return found


class DependencySpec(_Frozen):
    """A TCP hop from the system to an upstream; doorbuster puts a Toxiproxy proxy on it."""

    name: str = Field(pattern=_NAME)
    lane: Lane = "sync"
    upstream: str

    @field_validator("upstream")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if placeholders(value):
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"expected host:port or {{service:NAME}}, got {value!r}")
        return value

    @property
    def proxy_name(self) -> str:
        return f"{self.lane}-{self.name}"


class FollowSpec(_Frozen):
    """How a shopper follows an accepted request until it is done (a queue-backed lane)."""

    # Where the answer says to look: ``header:NAME`` or ``json:FIELD``.
    location: str = Field(default="header:Location", pattern=r"^(header|json):[A-Za-z0-9_.-]+$")
    status_field: str = "status"
    done: tuple[str, ...] = Field(default=("fulfilled",), min_length=1)
    failed: tuple[str, ...] = ("failed",)


class LaneSpec(_Frozen):
    """The request a shopper sends on a lane; any 2xx answer is a success."""

    method: _METHODS = "POST"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    # The answer's JSON field that names what was created (an order id), if it has one.
    id_field: str | None = None
    follow: FollowSpec | None = None


class SystemSpec(_Frozen):
    name: str = Field(pattern=_NAME)
    description: str = ""
    builtin: Literal["checkout"] | None = None
    services: tuple[ServiceSpec, ...] = ()
    dependencies: tuple[DependencySpec, ...] = ()
    lanes: dict[Lane, LaneSpec] = Field(min_length=1)
    # The built-in checkout's order ledger (exactly-once, lost orders); other systems have none.
    ledger: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> SystemSpec:
        if self.builtin is not None:
            if self.services or self.dependencies:
                raise ValueError(
                    "a builtin system takes its services and dependencies from the stack settings"
                )
        else:
            if self.ledger:
                raise ValueError("ledger: only the builtin checkout keeps an order ledger")
            if not self.services:
                raise ValueError("services: at least one")
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError(f"services: each name once, got {names}")
        proxies = [d.proxy_name for d in self.dependencies]
        if len(set(proxies)) != len(proxies):
            raise ValueError(f"dependencies: each name once per lane, got {proxies}")
        for service in self.services:
            for where, text in service.strings():
                _check_names(text, _COMMAND, f"services.{service.name}.{where}")
                self._check_refs(text, f"services.{service.name}.{where}")
        for dep in self.dependencies:
            _check_names(dep.upstream, _ADDRESSES, f"dependencies.{dep.name}.upstream")
            self._check_refs(dep.upstream, f"dependencies.{dep.name}.upstream")
        for lane, spec in self.lanes.items():
            texts = [("url", spec.url), *((f"headers.{k}", v) for k, v in spec.headers.items())]
            for where, text in texts:
                _check_names(text, _ADDRESSES - {"proxy"}, f"lanes.{lane}.{where}")
                self._check_refs(text, f"lanes.{lane}.{where}")
            if spec.body is not None:
                _check_names(spec.body, BODY_PLACEHOLDERS, f"lanes.{lane}.body")
            parts = urlsplit(expand(spec.url, self.url_stand_ins()))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"lanes.{lane}.url: expected an http(s) URL, got {spec.url!r}")
        return self

    @property
    def service_names(self) -> tuple[str, ...]:
        """Services placeholders may name: the system's, or the checkout's two order services."""
        if self.builtin is not None:
            return BUILTIN_SERVICES
        return tuple(s.name for s in self.services)

    def _check_refs(self, text: str, where: str) -> None:
        services = set(self.service_names)
        managed = {s.name for s in self.services if s.managed} | (services if self.builtin else set())
        deps = {d.name for d in self.dependencies} | {d.proxy_name for d in self.dependencies}
        for name, arg in placeholders(text):
            if name == "port" and arg not in managed:
                raise ValueError(f"{where}: {{port:{arg}}}: no service doorbuster starts is named {arg!r}")
            if name == "service" and arg not in services:
                raise ValueError(
                    f"{where}: {{service:{arg}}}: no service is named {arg!r}; services: {sorted(services)}"
                )
            if name == "proxy" and arg not in deps:
                raise ValueError(
                    f"{where}: {{proxy:{arg}}}: no dependency is named {arg!r}; dependencies: {sorted(deps)}"
                )
            if name == "proxy" and sum(d.name == arg for d in self.dependencies) > 1:
                raise ValueError(f"{where}: {{proxy:{arg}}} is on more than one lane; name it LANE-{arg}")

    def url_stand_ins(self) -> dict[str, str]:
        """Stand-in addresses, for the shape or the path of a URL before any port is known."""
        values = {"host": "127.0.0.1"}
        for name in self.service_names:
            values[f"service:{name}"] = "127.0.0.1:1"
            values[f"port:{name}"] = "1"
        return values

    def service(self, name: str) -> ServiceSpec:
        for service in self.services:
            if service.name == name:
                return service
        raise ConfigError(f"system {self.name} has no service {name!r}")
