"""Locust's web UI and master listen on loopback unless the user says otherwise.

Locust's own default for both is every interface (``*``), against the project's rule that
every listener binds loopback.  Importing this module (``shoppers.py`` does, so every
scenario's locustfile does too) makes 127.0.0.1 the default of ``--web-host`` and
``--master-bind-host``.  It only sets defaults, so an explicit flag, a ``LOCUST_WEB_HOST`` /
``LOCUST_MASTER_BIND_HOST`` variable or a ``locust.conf`` still wins; ``--web-host '*'``
listens on every interface again.
"""

from __future__ import annotations

from typing import Any

from locust import events
from locust.argument_parser import LocustArgumentParser

__all__ = ["LOOPBACK", "bind_loopback_by_default"]

LOOPBACK = "127.0.0.1"


@events.init_command_line_parser.add_listener
def bind_loopback_by_default(parser: LocustArgumentParser, **_: Any) -> None:
    """Locust fires this after importing the locustfile and before it reads the command line,
    its environment variables and its config files, which configargparse ranks above defaults."""
    parser.set_defaults(web_host=LOOPBACK, master_bind_host=LOOPBACK)
