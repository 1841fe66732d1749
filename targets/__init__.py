"""The system under test: a sync lane, an async lane, their downstream services and workers.

Each process is started by the harness as ``python -m targets ROLE --stack FILE ...`` and
serves ``/health`` and ``/metrics``.  Nothing here imports the harness CLI or Locust.
"""
