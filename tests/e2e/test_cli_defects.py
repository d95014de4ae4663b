"""The small defects a new user meets first: a traceback for a missing policy, a hub page that
waits for ever, the webhook's answer to a wrong token, topic counts that include transaction
markers, and help that leaves commands and options out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from broker.clients import producer
from broker.settings import Settings
from connectors.education.tokens import TokenStore
from connectors.education.webhook import ConcernWebhook
from sgb.ops.status import collect
from tests.conftest import sgb_env
from tests.e2e.test_cli_errors import assert_one_sentence, clean_env, sgb


def test_filter_with_a_missing_policy_says_so_in_one_sentence(tmp_path: Path) -> None:
    env = clean_env(tmp_path, SGB_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert_one_sentence(
        sgb("filter", "run", "--policy", str(tmp_path / "nonexistent.yaml"), env=env), "does not exist"
    )


@pytest.mark.kafka
def test_hub_serve_for_an_organisation_not_onboarded_stops_at_once(kafka: Settings, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sgb.cli", "hub", "serve", "mash", "999", "--port", "0"],
        env=sgb_env(kafka.model_copy(update={"state_dir": tmp_path / "state"})),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_one_sentence(result, "MASH 999 is not onboarded")


def test_a_wrong_webhook_token_is_not_called_missing(tmp_path: Path) -> None:
    tokens = TokenStore(tmp_path / "tokens")
    tokens.add("100000")
    webhook = ConcernWebhook(Settings(bootstrap_servers="127.0.0.1:1", state_dir=tmp_path), tokens)
    client = TestClient(webhook.app)
    wrong = client.post("/v1/concerns", json={}, headers={"Authorization": "Bearer not-a-token"})
    missing = client.post("/v1/concerns", json={})
    assert wrong.status_code == missing.status_code == 401
    assert "required" not in wrong.json()["error"] and "not" in wrong.json()["error"]
    assert "required" in missing.json()["error"]


@pytest.mark.kafka
def test_status_counts_records_not_transaction_markers(kafka: Settings) -> None:
    topic = kafka.topic("sg.deliver.mash.202.v1")
    prod = producer(kafka, transactional_id=f"{kafka.topic_prefix}status-test")
    prod.init_transactions(30)
    for i in range(3):  # three transactions of one record: three records, six offsets
        prod.begin_transaction()
        prod.produce(topic, key=b"k", value=f"v{i}".encode())
        prod.commit_transaction(30)
    found = {t.topic: t for t in collect(kafka, minutes=1).topics}["sg.deliver.mash.202.v1"]
    assert found.end_offset == 6
    assert found.records == 3 and found.exact
    assert collect(kafka, minutes=1).unread["sg.deliver.mash.202.v1"] == 3


def test_help_names_every_command_and_option(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    root = sgb("--help", env=env).stdout
    for command in ("serve-webhook", "school-token", "schemas register", "schemas asyncapi"):
        assert command in root, command
    filter_help = sgb("filter", "run", "--help", env=env).stdout
    assert "--batch-size" in filter_help and "transaction" in filter_help.split("--batch-size", 1)[1][:200]
    serve_help = sgb("hub", "serve", "--help", env=env).stdout
    assert "Port the inbox page listens on" in serve_help
