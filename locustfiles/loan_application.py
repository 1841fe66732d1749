"""The ``loan-application`` scenario (scenarios/loan-application.yaml) for plain Locust, web UI included::

    doorbuster up --scenario loan-application          # with the scenario's stack settings
    locust -f locustfiles/loan_application.py

Its chaos timeline runs from test start; its faults are removed at test stop and on quit.
"""

import os

os.environ.setdefault("DOORBUSTER_SCENARIO", "loan-application")

from shoppers import *  # noqa: F403
