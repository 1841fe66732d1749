"""A running stack: its state directory, its supervisor, its processes and generated files."""
