"""doorbuster's control plane: topology, supervision, chaos, runs and reports."""

from harness.errors import (
    ConfigError,
    DoorbusterError,
    EnvironmentProblem,
    ExitCode,
    ExpectationFailed,
    MissingBinary,
    PortBusy,
    StackNotRunning,
    StartFailed,
    ToxiproxyUnavailable,
)
from harness.settings import StackSettings
from harness.topology import Topology

__all__ = [
    "ConfigError",
    "DoorbusterError",
    "EnvironmentProblem",
    "ExitCode",
    "ExpectationFailed",
    "MissingBinary",
    "PortBusy",
    "StackNotRunning",
    "StackSettings",
    "StartFailed",
    "Topology",
    "ToxiproxyUnavailable",
]
