"""A local Kafka for tests and benchmarks on whatever loopback ports are free now, started
again on others when another process takes one before the broker binds it."""

from __future__ import annotations

import socket
from collections.abc import Callable

from broker.cluster.local_kafka import START_TIMEOUT_S, LocalKafka
from broker.exceptions import KafkaRuntimeError, PortTaken
from broker.logs import get_logger

log = get_logger("broker.kafka")


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive loopback ports that are free now (below 60000, clear
    of the ephemeral range's top). Another process may take one before Kafka binds it: start
    with :func:`start_on_free_ports`, which tries other ports when that happens."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 60000:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    msg = f"No {count} consecutive free loopback ports."
    raise KafkaRuntimeError(msg)


def start_on_free_ports(
    make: Callable[[int], LocalKafka], brokers: int = 1, attempts: int = 3, timeout: float = START_TIMEOUT_S
) -> LocalKafka:
    """Start ``make(first_port)``, a cluster of ``brokers`` nodes, on ports free at the time;
    when another process takes one before a node binds it, start again on others (up to
    ``attempts`` times)."""
    for attempt in range(1, attempts):
        kafka = make(free_port_block(2 * brokers))
        try:
            kafka.start(timeout)
            return kafka
        except PortTaken:
            log.warning("kafka port taken during start; trying other ports", count=attempt)
    kafka = make(free_port_block(2 * brokers))  # the last try: its PortTaken is the caller's
    kafka.start(timeout)
    return kafka
