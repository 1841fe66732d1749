"""The ``retry-storm-fixed`` scenario (scenarios/retry-storm-fixed.yaml) for plain Locust, web UI included::

    doorbuster up --scenario retry-storm-fixed          # with the scenario's stack settings
    locust -f locustfiles/retry_storm_fixed.py

Its chaos timeline runs from test start; its faults are removed at test stop and on quit.
"""

import os

os.environ.setdefault("DOORBUSTER_SCENARIO", "retry-storm-fixed")

from shoppers import *  # noqa: F403
