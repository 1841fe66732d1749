"""One module a command group: each parses, calls one function below the CLI, renders, exits."""
