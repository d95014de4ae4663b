"""The local runtime as a three-node KRaft cluster: layout, `sgb kafka start --brokers 3`,
replication of internal and declared topics, one node killed and restarted, stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cluster_waits import wait_for_new_leader, wait_until_in_sync
from confluent_kafka.admin import ConfigResource

from broker.clients import admin_client, consumer, producer
from broker.cluster.free_ports import free_port_block, start_on_free_ports
from broker.cluster.local_kafka import LocalKafka
from broker.cluster.nodes import partition_replicas, replicas
from broker.exceptions import KafkaRuntimeError, PortTaken
from broker.settings import Settings


def test_single_broker_layout_is_unchanged(tmp_path: Path) -> None:
    kafka = LocalKafka(Settings(state_dir=tmp_path, kafka_port=19092))
    assert kafka.brokers == 1 and len(kafka.nodes) == 1
    node = kafka.nodes[0]
    assert (kafka.data_dir, kafka.log_dir, kafka.pid_file) == (
        tmp_path / "kafka" / "data",
        tmp_path / "kafka" / "logs",
        tmp_path / "kafka" / "kafka.pid",
    )
    assert kafka.bootstrap == "127.0.0.1:19092" and node.controller_port == 19093
    config = node.config()
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert config["offsets.topic.replication.factor"] == config["transaction.state.log.min.isr"] == "1"
    explicit = LocalKafka(Settings(state_dir=tmp_path, kafka_port=19092, kafka_controller_port=29999))
    assert explicit.nodes[0].controller_port == 29999


def test_three_node_layout(tmp_path: Path) -> None:
    kafka = LocalKafka(Settings(state_dir=tmp_path, kafka_port=19100), brokers=3)
    assert [n.node_id for n in kafka.nodes] == [1, 2, 3]
    ports = [(n.port, n.controller_port) for n in kafka.nodes]
    assert ports == [(19100, 19101), (19102, 19103), (19104, 19105)]
    assert [n.home for n in kafka.nodes] == [tmp_path / "kafka" / f"node-{i}" for i in (1, 2, 3)]
    assert kafka.bootstrap == "127.0.0.1:19100,127.0.0.1:19102,127.0.0.1:19104"
    for node in kafka.nodes:
        config = node.config()
        assert config["node.id"] == str(node.node_id)
        assert config["controller.quorum.voters"] == "1@127.0.0.1:19101,2@127.0.0.1:19103,3@127.0.0.1:19105"
        assert config["offsets.topic.replication.factor"] == "3"
        assert config["transaction.state.log.replication.factor"] == "3"
        assert config["transaction.state.log.min.isr"] == "2"
    with pytest.raises(KafkaRuntimeError, match="SGB_KAFKA_CONTROLLER_PORT"):
        LocalKafka(Settings(state_dir=tmp_path, kafka_controller_port=20000), brokers=3)
    with pytest.raises(KafkaRuntimeError, match="1 to 5 brokers"):
        LocalKafka(Settings(state_dir=tmp_path), brokers=6)


@pytest.mark.timeout(300)
def test_sgb_kafka_start_brokers_3_replicates_and_survives_a_node(tmp_path: Path) -> None:
    port = free_port_block(6)
    env = dict(os.environ, SGB_STATE_DIR=str(tmp_path), SGB_KAFKA_PORT=str(port), SGB_LOG_FORMAT="json")
    env.pop("SGB_BOOTSTRAP_SERVERS", None)

    def sgb(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sgb.cli", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    started = sgb("kafka", "start", "--brokers", "3")
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        assert "cluster of 3 brokers started" in started.stdout
        status = sgb("kafka", "status")
        assert status.returncode == 0 and "3 of 3 brokers running" in status.stdout
        assert (tmp_path / "kafka" / "node-3" / "kafka.pid").is_file()

        prefix = f"c{uuid.uuid4().hex[:8]}."
        applied = sgb("topics", "apply", SGB_TOPIC_PREFIX=prefix)
        assert applied.returncode == 0, applied.stderr[-2000:]
        kafka = LocalKafka(Settings(state_dir=tmp_path, kafka_port=port))
        assert kafka.brokers == 3  # the recorded layout: stop and status need no --brokers
        settings = Settings(
            bootstrap_servers=kafka.bootstrap, state_dir=tmp_path / "client", topic_prefix=prefix
        )
        ingress = settings.topic("sg.ingress.police.v1")
        assert {len(p.replicas) for p in replicas(settings, [ingress])} == {3}
        admin = admin_client(settings)
        resource = ConfigResource(ConfigResource.Type.TOPIC, ingress)
        assert admin.describe_configs([resource])[resource].result()["min.insync.replicas"].value == "2"

        # Internal topics appear on first use: a committed offset and a transactional producer.
        txn = producer(settings, transactional_id=f"t-{uuid.uuid4().hex[:6]}")
        txn.init_transactions(60)
        txn.begin_transaction()
        txn.produce(ingress, key=b"k", value=b"v")
        txn.commit_transaction(60)
        reader = consumer(settings, f"g-{uuid.uuid4().hex[:6]}")
        reader.subscribe([ingress])
        while not reader.consume(1, timeout=1.0):
            pass
        reader.commit(asynchronous=False)
        reader.close()
        internal = replicas(settings, ["__consumer_offsets", "__transaction_state"])
        assert {len(p.replicas) for p in internal} == {3}

        # One node killed: its partitions get another leader; restarted, the ISR is whole again.
        before = partition_replicas(settings, ingress, 0)
        kafka.kill_node(before.leader)
        assert kafka.status().degraded
        degraded = sgb("kafka", "status")
        assert degraded.returncode == 4 and "NOT running" in degraded.stdout
        after = wait_for_new_leader(settings, ingress, 0, before.leader)
        assert after.leader in before.followers
        kafka.restart_node(before.leader)
        wait_until_in_sync(settings, [ingress, "__transaction_state"], timeout=120)
    finally:
        stopped = sgb("kafka", "stop")
    assert stopped.returncode == 0 and "cluster of 3 brokers stopped" in stopped.stdout
    assert sgb("kafka", "status").returncode == 3


@pytest.mark.timeout(300)
def test_a_port_taken_after_the_check_is_retried_on_other_ports(tmp_path: Path) -> None:
    """Ports are picked free, then another process may take one before Kafka binds it (seen on a
    busy CI machine). A socket bound but not listening passes the start's check and makes the
    JVM's bind fail, as that race does: the start says the port was taken, and
    start_on_free_ports starts on others."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port_block(2)))
        taken = held.getsockname()[1]
        made: list[int] = []

        def make(port: int) -> LocalKafka:
            made.append(taken if not made else port)
            state = tmp_path / f"try-{len(made)}"
            return LocalKafka(Settings(state_dir=state, kafka_port=made[-1], kafka_heap="256m"))

        kafka = start_on_free_ports(make)
        try:
            assert made[0] == taken and len(made) == 2 and made[1] != taken
            assert kafka.answering(timeout=5.0)
        finally:
            kafka.stop()
        with pytest.raises(PortTaken, match=f"could not listen on port {taken}"):
            LocalKafka(Settings(state_dir=tmp_path / "again", kafka_port=taken, kafka_heap="256m")).start()
