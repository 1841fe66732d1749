"""The name of every metric doorbuster's own processes export, each defined once.

The targets and the load generator export them; the supervisor exports the faults in force;
the panel catalogue (:mod:`harness.metrics.panels`), the recording rules, the run's counters and the
tests read them.  Names follow the Prometheus naming guide
(https://prometheus.io/docs/practices/naming/): the application prefix ``doorbuster_``, base
units (``_seconds``), ``_total`` on counters and only on them.  Counters are spelled here with
their ``_total``, as Prometheus stores them, so a name found on a dashboard is found here too.
Metrics of the Python client (``process_*``, ``python_*``) and of third-party services keep
their own names.
"""

from __future__ import annotations

PREFIX = "doorbuster_"

# -- the order services, both lanes ---------------------------------------------------------------
ORDER_REQUESTS = "doorbuster_order_requests_total"
ORDER_REQUEST_DURATION = "doorbuster_order_request_duration_seconds"
ORDER_FULFILLMENT = "doorbuster_order_fulfillment_seconds"
ORDERS = "doorbuster_orders_total"
OUTBOX_BACKLOG = "doorbuster_outbox_backlog"
OUTBOX_PUBLISHED = "doorbuster_outbox_published_total"
OUTBOX_PUBLISH_FAILURES = "doorbuster_outbox_publish_failures_total"
ORDER_WEBHOOKS = "doorbuster_order_webhooks_total"

# -- the sync lane's thread pool ---------------------------------------------------------------
THREAD_POOL_SIZE = "doorbuster_thread_pool_size"
THREAD_POOL_BUSY = "doorbuster_thread_pool_busy"
THREAD_POOL_QUEUED = "doorbuster_thread_pool_queued"
THREAD_POOL_QUEUE_LIMIT = "doorbuster_thread_pool_queue_limit"
THREAD_POOL_REJECTED = "doorbuster_thread_pool_rejected_total"

# -- a client's calls to its dependencies ---------------------------------------------------------
DOWNSTREAM_CALL_ATTEMPTS = "doorbuster_downstream_call_attempts_total"
DOWNSTREAM_CALL_RETRIES = "doorbuster_downstream_call_retries_total"
DOWNSTREAM_RETRIES_DENIED = "doorbuster_downstream_retries_denied_total"
DOWNSTREAM_CALL_DURATION = "doorbuster_downstream_call_duration_seconds"
CIRCUIT_BREAKER_STATE = "doorbuster_circuit_breaker_state"
CIRCUIT_BREAKER_TRANSITIONS = "doorbuster_circuit_breaker_transitions_total"

# -- a downstream service's own view ------------------------------------------------------------
DOWNSTREAM_REQUESTS = "doorbuster_downstream_requests_total"
DOWNSTREAM_REQUEST_DURATION = "doorbuster_downstream_request_duration_seconds"
DOWNSTREAM_INFLIGHT = "doorbuster_downstream_inflight"
DOWNSTREAM_QUEUED = "doorbuster_downstream_queued"
DOWNSTREAM_CAPACITY = "doorbuster_downstream_capacity"
DOWNSTREAM_REJECTED = "doorbuster_downstream_rejected_total"
DOWNSTREAM_ABANDONED_WORK = "doorbuster_downstream_abandoned_work_total"
DOWNSTREAM_DEADLINE_DROPPED = "doorbuster_downstream_deadline_dropped_total"
DOWNSTREAM_SIDE_EFFECTS = "doorbuster_downstream_side_effects_total"
DOWNSTREAM_DUPLICATE_SIDE_EFFECTS = "doorbuster_downstream_duplicate_side_effects_total"
DOWNSTREAM_IDEMPOTENT_REPLAYS = "doorbuster_downstream_idempotent_replays_total"
PAYMENT_DUPLICATE_CHARGES = "doorbuster_payment_duplicate_charges_total"

# -- the async lane's workers and broker ------------------------------------------------------------
WORKER_MESSAGES_PROCESSED = "doorbuster_worker_messages_processed_total"
WORKER_MESSAGES_REDELIVERED = "doorbuster_worker_messages_redelivered_total"
WORKER_MESSAGES_DEAD_LETTERED = "doorbuster_worker_messages_dead_lettered_total"
WORKER_DUPLICATE_MESSAGES = "doorbuster_worker_duplicate_messages_total"
WORKER_MESSAGES_OUT_OF_ORDER = "doorbuster_worker_messages_out_of_order_total"
WORKER_MESSAGES_IN_PROGRESS = "doorbuster_worker_messages_in_progress"
BROKER_QUEUE_DEPTH = "doorbuster_broker_queue_depth"
BROKER_MESSAGES_LOST = "doorbuster_broker_messages_lost_total"

# -- the supervisor: faults in force ---------------------------------------------------------------
TOXIC_ACTIVE = "doorbuster_toxic_active"

# -- the load generator (Locust), as the shoppers saw it -----------------------------------------------
LOCUST_REQUESTS = "doorbuster_locust_requests_total"
LOCUST_FAILURES = "doorbuster_locust_failures_total"
LOCUST_ARRIVALS = "doorbuster_locust_arrivals_total"
LOCUST_REQUEST_DURATION = "doorbuster_locust_request_duration_seconds"
LOCUST_ARRIVAL_RATE_TARGET = "doorbuster_locust_arrival_rate_target"
LOCUST_IN_FLIGHT = "doorbuster_locust_in_flight"
LOCUST_USERS = "doorbuster_locust_users"

# -- the load generator's own health, per generator process (``worker``: "0" .. "N-1") ----------------
GENERATOR_SEND_LAG = "doorbuster_generator_send_lag_seconds"  # start - intended start, by lane
GENERATOR_EVENT_LOOP_LAG = "doorbuster_generator_event_loop_lag_seconds"  # the last window's most
GENERATOR_CPU_SHARE = "doorbuster_generator_cpu_share_ratio"  # CPU time over wall time, last window
GENERATOR_ARRIVALS_DUE = "doorbuster_generator_arrivals_due_total"
GENERATOR_ARRIVALS_SENT = "doorbuster_generator_arrivals_sent_total"
GENERATOR_ARRIVALS_DROPPED = "doorbuster_generator_arrivals_dropped_total"
GENERATOR_ARRIVALS_NEVER_SENT = "doorbuster_generator_arrivals_never_sent_total"
