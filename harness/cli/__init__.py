"""The ``doorbuster`` command line: parse, call one function below, render, exit with a named code."""
