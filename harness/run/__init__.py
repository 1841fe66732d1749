"""``doorbuster run``: planning a run, running it, its progress, collecting and judging it."""
