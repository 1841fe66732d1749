"""The ``black-friday`` scenario (scenarios/black-friday.yaml) for plain Locust, web UI included::

    doorbuster up --scenario black-friday          # with the scenario's stack settings
    locust -f locustfiles/black_friday.py

Its chaos timeline runs from test start; its faults are removed at test stop and on quit.
"""

import os

os.environ.setdefault("DOORBUSTER_SCENARIO", "black-friday")

from shoppers import *  # noqa: F403
