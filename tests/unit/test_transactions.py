"""The transaction plumbing's guard against a client call that never returns."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from broker.transactions import bounded, retrying


def test_a_call_that_hangs_is_abandoned_as_a_non_retriable_timeout() -> None:
    release = threading.Event()
    with pytest.raises(KafkaException) as caught:
        retrying(lambda: bounded(release.wait, 0.2, "send_offsets_to_transaction"))
    release.set()
    error = caught.value.args[0]
    assert error.code() == KafkaError._TIMED_OUT
    assert not error.retriable() and not error.txn_requires_abort()  # the caller replaces the producer
    assert "send_offsets_to_transaction did not return within 0 s" in error.str()


def test_a_call_that_returns_passes_its_error_through() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise KafkaException(
                KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, "loading", retriable=True)
            )

    retrying(lambda: bounded(flaky, 5, "commit_transaction"))
    assert len(calls) == 3
    with pytest.raises(KafkaException) as caught:
        bounded(
            lambda: (_ for _ in ()).throw(
                KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))
            ),
            5,
            "commit_transaction",
        )
    assert caught.value.args[0].fatal()
