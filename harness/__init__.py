"""doorbuster's control plane: topology, supervision, chaos, runs and reports."""

from model.errors import (
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
from model.settings import StackSettings
from model.topology import Topology

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
