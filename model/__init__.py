"""The model: pure definitions shared by the harness, the targets and the load generators.

Nothing here does I/O or imports from ``harness``, ``targets`` or ``locustfiles``; all three
import from here, so the system under test never depends on the control plane.
"""
