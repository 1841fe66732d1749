"""What a fault server's API (Toxiproxy's, the HTTP fault stage's) not answering means, said
once: a call that could not connect, or connected and got no answer in time, or failed on the
way, becomes the server's :class:`~model.errors.EnvironmentProblem`, naming the address, what
was being done and what to try."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests

from model.errors import EnvironmentProblem

__all__ = ["call_timeouts", "unanswered_calls"]


def call_timeouts(timeout_s: float, connect_timeout_s: float) -> tuple[float, float]:
    """A call's (connect, read) timeouts: ``timeout_s`` bounds the wait for each answer, the
    connect timeout is the smaller of it and ``connect_timeout_s``."""
    if timeout_s <= 0 or connect_timeout_s <= 0:
        raise ValueError(f"timeouts must be positive, got {timeout_s} and {connect_timeout_s}")
    return min(connect_timeout_s, timeout_s), timeout_s


@contextmanager
def unanswered_calls(
    server: str, address: str, what: str, timeout: tuple[float, float], problem: type[EnvironmentProblem]
) -> Iterator[None]:
    """Translate the ``requests`` errors raised inside into ``problem``.

    ``server`` names the server (``Toxiproxy``), ``timeout`` is the call's (connect, read).
    """
    connect_s, read_s = timeout
    try:
        yield
    except requests.ConnectTimeout as exc:
        raise problem(
            f"{server} at {address} did not accept a connection within "
            f"{connect_s:g}s ({what}); is the stack up? (doorbuster up)"
        ) from exc
    except requests.ReadTimeout as exc:
        raise problem(
            f"{server} at {address} accepted the connection but did not answer "
            f"within {read_s:g}s ({what}); is it stuck? (doorbuster down, then up)"
        ) from exc
    except requests.RequestException as exc:
        raise problem(
            f"{server} at {address} did not answer ({what}): "
            f"{type(exc).__name__}; is the stack up? (doorbuster up)"
        ) from exc
