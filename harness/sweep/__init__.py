"""``doorbuster sweep``: the vulnerable-region map, one short trial per cell."""
