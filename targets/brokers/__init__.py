"""The async lane's brokers: the interface (:mod:`targets.brokers.interface`), one module per
broker, each importing only the interface, and :func:`make_broker`, which picks one by name.
"""

from __future__ import annotations

from targets.brokers.interface import Broker

__all__ = ["make_broker"]


def make_broker(name: str, url: str) -> Broker:
    """The broker ``name`` (a :data:`~model.settings.Broker`), to be reached at ``url``."""
    # Each adapter is imported only when chosen: a process loads one broker's client library.
    if name == "rabbitmq":
        from targets.brokers.rabbitmq import RabbitMQBroker

        return RabbitMQBroker(url)
    if name == "kafka":
        from targets.brokers.kafka import KafkaBroker

        return KafkaBroker(url)
    if name == "sqs":
        from targets.brokers.sqs import SQSBroker

        return SQSBroker(url)
    from targets.brokers.redis import RedisPubSubBroker, RedisStreamsBroker

    if name == "redis-streams":
        return RedisStreamsBroker(url)
    if name == "redis-pubsub":
        return RedisPubSubBroker(url)
    raise ValueError(f"unknown broker {name!r}")
