"""The harness's one exception hierarchy, and the exit code each maps to.

::

    DoorbusterError                 exit 1
    ├── ExpectationFailed           exit 1  an expectation failed or could not be decided
    ├── ConfigError                 exit 2  bad usage, a bad file, a bad value
    └── EnvironmentProblem          exit 3  the machine can not do it
        ├── MissingBinary                   a binary is on neither PATH nor the project bin
        ├── PortBusy                        a port the topology needs is taken
        ├── StartFailed                     a server did not become healthy (log tail attached)
        ├── StackNotRunning                 a command needs ``doorbuster up`` first
        ├── ForeignFaults                   faults applied outside doorbuster are in force
        ├── ToxiproxyUnavailable            Toxiproxy's API did not answer or refused a call
        ├── HttpStageUnavailable            the HTTP fault stage's API did not answer or failed a call
        └── MetricsUnreadable               a process's metrics page did not answer in time or is not one

Errors of lower libraries are translated where they are caught, with ``raise ... from exc``;
the CLI catches :class:`DoorbusterError` once and prints ``ErrorType: message``.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ConfigError",
    "DoorbusterError",
    "EnvironmentProblem",
    "ExitCode",
    "ExpectationFailed",
    "ForeignFaults",
    "HttpStageUnavailable",
    "MetricsUnreadable",
    "MissingBinary",
    "PortBusy",
    "StackNotRunning",
    "StartFailed",
    "ToxiproxyUnavailable",
]


class ExitCode(IntEnum):
    OK = 0
    EXPECTATION_FAILED = 1
    USAGE = 2
    ENVIRONMENT = 3


class DoorbusterError(Exception):
    exit_code: ExitCode = ExitCode.EXPECTATION_FAILED


class ExpectationFailed(DoorbusterError):
    exit_code = ExitCode.EXPECTATION_FAILED


class ConfigError(DoorbusterError):
    exit_code = ExitCode.USAGE


class EnvironmentProblem(DoorbusterError):
    exit_code = ExitCode.ENVIRONMENT


class MissingBinary(EnvironmentProblem):
    pass


class PortBusy(EnvironmentProblem):
    pass


class StartFailed(EnvironmentProblem):
    pass


class StackNotRunning(EnvironmentProblem):
    pass


class ForeignFaults(EnvironmentProblem):
    pass


class ToxiproxyUnavailable(EnvironmentProblem):
    pass


class HttpStageUnavailable(EnvironmentProblem):
    pass


class MetricsUnreadable(EnvironmentProblem):
    pass
