"""The baseline for bench/loadgen_bench.py: a plain Locust FastHttpUser, nothing of ours.

``PLAIN_RATE`` (per user per second) makes it pace itself with constant_throughput, the way
closed-loop Locust tests usually try to hold a rate; without it, users go flat out.
"""

import json
import os

from locust import FastHttpUser, constant, constant_throughput, task

_RATE = float(os.environ.get("PLAIN_RATE", "0"))
_BODY = json.dumps({"customer_id": "shopper-1", "items": [{"sku": "tv-55", "qty": 1}]})


class PlainShopper(FastHttpUser):
    wait_time = constant_throughput(_RATE) if _RATE > 0 else constant(0)
    network_timeout = 10.0
    connection_timeout = 10.0

    @task
    def checkout(self) -> None:
        self.client.post(
            "/orders", data=_BODY, headers={"Content-Type": "application/json"}, name="sync checkout"
        )
