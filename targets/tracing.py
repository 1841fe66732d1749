"""W3C trace context for messages: every event carries a ``traceparent`` and a correlation id.

>>> parent = new_traceparent()
>>> child = child_traceparent(parent)
>>> parent.split("-")[1] == child.split("-")[1]
True
"""

from __future__ import annotations

import re
import secrets

__all__ = ["child_traceparent", "new_traceparent"]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_traceparent(parent: str | None) -> str:
    """A new span in the same trace; a missing or malformed parent starts a new trace."""
    match = _TRACEPARENT.match(parent or "")
    if match is None:
        return new_traceparent()
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"
