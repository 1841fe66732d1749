"""The ``retry-storm`` scenario (scenarios/retry-storm.yaml) for plain Locust, web UI included::

    doorbuster up --scenario retry-storm          # with the scenario's stack settings
    locust -f locustfiles/retry_storm.py

Its chaos timeline runs from test start; its faults are removed at test stop and on quit.
"""

import os

os.environ.setdefault("DOORBUSTER_SCENARIO", "retry-storm")

from shoppers import *  # noqa: F403
