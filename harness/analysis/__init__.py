"""From a run's records to what they mean: figures with their intervals, recovery, verdicts."""
