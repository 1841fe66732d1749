"""The typed records of a run directory, and where each one lives."""
