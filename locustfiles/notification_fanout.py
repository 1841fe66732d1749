"""The ``notification-fanout`` scenario for plain Locust, web UI included::

    doorbuster up --scenario notification-fanout          # with the scenario's stack settings
    locust -f locustfiles/notification_fanout.py

Its chaos timeline runs from test start; its faults are removed at test stop and on quit.
"""

import os

os.environ.setdefault("DOORBUSTER_SCENARIO", "notification-fanout")

from shoppers import *  # noqa: F403
