"""The system under test: a sync lane, an async lane, their downstream services and workers.

Each process is started as ``python -m targets`` with its resolved configuration (a
:class:`~model.target_config.TargetConfig`) and serves ``/health`` and ``/metrics``.  It imports
only the model, never the control plane or Locust, so it could be deployed without doorbuster.
"""
