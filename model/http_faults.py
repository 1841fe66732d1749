"""HTTP faults, decided per request by the HTTP fault stage (``stage/httpfault``).

Each kind is a frozen dataclass whose fields are its attributes; a bad value is refused when
the fault is made, with a :class:`~model.errors.ConfigError` that names the attribute, before
anything is sent to a stage.  :func:`http_fault_from_json` reads one from the stage API's JSON
(``{name?, type, attributes, match?}``) and :meth:`as_json` writes it back.

>>> HttpError(status=503, rate=0.3).as_json()["attributes"]
{'status': 503, 'rate': 0.3}
>>> http_fault_from_json({"type": "http_delay", "attributes": {"latency_ms": 200},
...                       "match": {"path_prefix": "/pay"}}).match.path_prefix
'/pay'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from model.errors import ConfigError
from model.json_values import number_value, object_of, refuse_unknown

__all__ = [
    "HTTP_FAULT_KINDS",
    "HttpAbort",
    "HttpDelay",
    "HttpError",
    "HttpFailFirst",
    "HttpFault",
    "HttpMatch",
    "http_fault_from_json",
]

DELAY_WHERE = ("request", "response")


@dataclass(frozen=True, kw_only=True)
class HttpMatch:
    """Which requests a fault takes: all of the given conditions hold (none given: every one)."""

    method: str | None = None
    path_prefix: str | None = None
    header: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method is not None and (not isinstance(self.method, str) or not self.method.isalpha()):
            raise ConfigError(f"match.method: expected an HTTP method (GET, POST...), got {self.method!r}")
        if self.path_prefix is not None and (
            not isinstance(self.path_prefix, str) or not self.path_prefix.startswith("/")
        ):
            raise ConfigError(f"match.path_prefix: expected a path starting with /, got {self.path_prefix!r}")
        if not isinstance(self.header, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in self.header.items()
        ):
            raise ConfigError(f"match.header: expected {{name: value}} of strings, got {self.header!r}")

    @property
    def is_everything(self) -> bool:
        return self.method is None and self.path_prefix is None and not self.header

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.method is not None:
            out["method"] = self.method
        if self.path_prefix is not None:
            out["path_prefix"] = self.path_prefix
        if self.header:
            out["header"] = dict(self.header)
        return out

    @classmethod
    def from_json(cls, data: Any) -> HttpMatch:
        if data is None:
            return cls()
        data = object_of(data)
        refuse_unknown(data, ("method", "path_prefix", "header"))
        return cls(
            method=data.get("method"), path_prefix=data.get("path_prefix"), header=data.get("header") or {}
        )


@dataclass(frozen=True, kw_only=True)
class _HttpFaultBase:
    kind: ClassVar[str]
    name: str | None = None
    match: HttpMatch = field(default_factory=HttpMatch)

    @property
    def fault_name(self) -> str:
        """Its name on the stage: what finds it again to remove it."""
        return self.name or self.kind

    def attributes(self) -> dict[str, Any]:
        raise NotImplementedError

    def as_json(self) -> dict[str, Any]:
        """The stage API's body for this fault (what :func:`http_fault_from_json` reads)."""
        # No name: the stage names it after its kind, as fault_name does.
        out: dict[str, Any] = {"type": self.kind, "attributes": self.attributes()}
        if self.name is not None:
            out["name"] = self.name
        if not self.match.is_everything:
            out["match"] = self.match.as_json()
        return out

    # -- checks, each naming the attribute --------------------------------------------------
    def _number(self, key: str, value: Any) -> float:
        number = float(number_value(f"{self.kind}: {key}", value))
        if number < 0:
            raise ConfigError(f"{self.kind}: {key} must not be negative, got {value}")
        return number

    def _rate(self, value: Any) -> None:
        if self._number("rate", value) > 1:
            raise ConfigError(f"{self.kind}: rate is a share of requests from 0 to 1, got {value}")

    def _whole(self, key: str, value: Any, *, least: int) -> None:
        if not float(self._number(key, value)).is_integer() or value < least:
            raise ConfigError(f"{self.kind}: {key} must be a whole number from {least}, got {value}")

    def _status(self, value: Any) -> None:
        self._whole("status", value, least=0)
        if not 400 <= value <= 599:
            raise ConfigError(f"{self.kind}: status must be an HTTP error from 400 to 599, got {value}")


@dataclass(frozen=True, kw_only=True)
class HttpError(_HttpFaultBase):
    """A share ``rate`` of the matching requests answered ``status`` (with ``body``) by the
    stage; they never reach the upstream."""

    kind: ClassVar[str] = "http_error"
    status: int
    rate: float = 1.0
    body: str | None = None

    def __post_init__(self) -> None:
        self._status(self.status)
        self._rate(self.rate)
        if self.body is not None and not isinstance(self.body, str):
            raise ConfigError(f"http_error: body must be a string, got {self.body!r}")

    def attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "rate": self.rate}
        if self.body is not None:
            out["body"] = self.body
        return out


@dataclass(frozen=True, kw_only=True)
class HttpDelay(_HttpFaultBase):
    """A share ``rate`` of the matching requests held ``latency_ms`` ± ``jitter_ms``, before
    going upstream (``where="request"``) or before the answer goes back (``"response"``)."""

    kind: ClassVar[str] = "http_delay"
    latency_ms: float
    jitter_ms: float = 0.0
    rate: float = 1.0
    where: str = "request"

    def __post_init__(self) -> None:
        self._number("latency_ms", self.latency_ms)
        self._number("jitter_ms", self.jitter_ms)
        self._rate(self.rate)
        if self.where not in DELAY_WHERE:
            raise ConfigError(f"http_delay: where must be request or response, got {self.where!r}")

    def attributes(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "rate": self.rate,
            "where": self.where,
        }


@dataclass(frozen=True, kw_only=True)
class HttpFailFirst(_HttpFaultBase):
    """The first ``count`` matching requests answered ``status``, then every one passes
    (the fault a retry test needs)."""

    kind: ClassVar[str] = "http_fail_first"
    count: int
    status: int = 503

    def __post_init__(self) -> None:
        self._whole("count", self.count, least=1)
        self._status(self.status)

    def attributes(self) -> dict[str, Any]:
        return {"count": self.count, "status": self.status}


@dataclass(frozen=True, kw_only=True)
class HttpAbort(_HttpFaultBase):
    """A share ``rate`` of the matching requests get no answer: the connection is closed
    before anything is written, or after ``after_bytes`` of the upstream's answer's body."""

    kind: ClassVar[str] = "http_abort"
    rate: float = 1.0
    after_bytes: int | None = None

    def __post_init__(self) -> None:
        self._rate(self.rate)
        if self.after_bytes is not None:
            self._whole("after_bytes", self.after_bytes, least=0)

    def attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rate": self.rate}
        if self.after_bytes is not None:
            out["after_bytes"] = self.after_bytes
        return out


HttpFault = HttpError | HttpDelay | HttpFailFirst | HttpAbort
_KINDS: dict[str, type[HttpError | HttpDelay | HttpFailFirst | HttpAbort]] = {
    cls.kind: cls for cls in (HttpError, HttpDelay, HttpFailFirst, HttpAbort)
}
# kind -> its attributes, from the fields (the stage's own schema, stage/httpfault/faults.go,
# says the same; tests/integration/test_http_stage.py checks that it refuses what this does).
HTTP_FAULT_KINDS: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(cls) if f.name not in ("name", "match"))
    for kind, cls in _KINDS.items()
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)
    for kind, cls in _KINDS.items()
}


def http_fault_from_json(data: Any) -> HttpFault:
    """An HTTP fault from ``{name?, type, attributes, match?}``; a ConfigError names the field
    or attribute that is wrong and what was expected."""
    data = object_of(data)
    refuse_unknown(data, ("name", "type", "attributes", "match"))
    kind = data.get("type")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError(f"type: unknown HTTP fault type {kind!r}; known types: {', '.join(_KINDS)}")
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise ConfigError(f"attributes: expected an object, got {attributes!r}")
    unknown = sorted(set(attributes) - set(HTTP_FAULT_KINDS[kind]))
    if unknown:
        raise ConfigError(
            f"{kind}: unknown attribute(s) {', '.join(unknown)}; "
            f"{kind} takes {', '.join(HTTP_FAULT_KINDS[kind])}"
        )
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"name: expected a fault name, got {name!r}")
    missing = [key for key in _REQUIRED[kind] if key not in attributes]
    if missing:
        raise ConfigError(f"{kind}: missing attribute(s) {', '.join(missing)}")
    return cls(name=name, match=HttpMatch.from_json(data.get("match")), **attributes)
