# The README's two commands: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV := .venv/bin
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup demo test test-lanes check installed lint types unit integration bench soak dashboards down clean

setup:
	@bash scripts/setup

demo: setup
	$(VENV)/doorbuster run black-friday

# The unit tests as make check runs them, then the integration tests in one process: they share
# stacks and ports, and their timing verdicts need the cores (docs/development/index.md).
test: setup
	$(VENV)/python -m pytest -q -p no:cacheprovider -n 4 tests/unit model harness targets chaosdoorbuster
	$(VENV)/python -m pytest -q -p no:cacheprovider --durations=15 tests/integration

# The suite in two lanes side by side, each in a network namespace of its own (tests/lanes.py);
# on two cores the lanes' contention fails timing verdicts (docs/development/index.md).
test-lanes: setup
	$(VENV)/python -m tests.lanes

# Lint, types and the unit tests (with the modules' doctests), in seconds: it installs nothing.
# Four pytest-xdist processes on two cores: a third of the unit tests' time is waiting on a
# timeout or a socket (docs/development/index.md has the times).
check: installed lint types
	$(VENV)/python -m pytest -q -p no:cacheprovider -n 4 tests/unit model harness targets

installed:
	@test -x $(VENV)/python -a -x $(VENV)/ruff -a -x $(VENV)/mypy || { \
		echo "no .venv with ruff and mypy here (make check, lint and types install nothing): run \`make setup\` first" >&2; \
		exit 3; }

lint: installed
	$(VENV)/ruff check model harness targets tests bench locustfiles chaosdoorbuster docs/hooks
	$(VENV)/ruff format --check model harness targets tests bench locustfiles chaosdoorbuster docs/hooks

types: installed
	$(VENV)/mypy

unit: setup
	$(VENV)/python -m pytest -q tests/unit

integration: setup
	$(VENV)/python -m pytest -q tests/integration

bench: setup
	$(VENV)/python bench/stack_bench.py
	$(VENV)/python bench/loadgen_bench.py
	$(VENV)/python bench/broker_bench.py

soak: setup
	$(VENV)/python bench/soak.py

dashboards: setup
	$(VENV)/doorbuster dashboards

down:
	-$(VENV)/doorbuster down

clean: down
	rm -rf .venv .tools runs
