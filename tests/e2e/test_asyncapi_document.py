"""What the document ``sgb schemas asyncapi`` writes says: every declared topic, the registered
Avro payloads with their tags, headers and keys, each operation's participant, and output that
is deterministic, the same in JSON and YAML. That the real AsyncAPI CLI accepts it:
test_asyncapi.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncapi_doc import AVRO_FORMAT, generate, sgb

from broker.hub.delivered import DECISION_HEADERS
from broker.security.provenance import KEY_ID_HEADER, SIGNATURE_HEADER
from broker.tracing import TRACE_HEADERS
from schemas.topics import AUDIENCES, delivery_topic, load_declaration


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document as `sgb schemas asyncapi --output FILE.yaml` writes it."""
    return generate(tmp_path_factory)


# -- what the document says ------------------------------------------------------------------
def test_document_describes_every_declared_topic(generated: Path) -> None:
    document = yaml.safe_load(generated.read_text(encoding="utf-8"))
    assert document["asyncapi"] == "3.0.0"
    declaration = load_declaration()
    addresses = {channel["address"] for channel in document["channels"].values()}
    delivery = document["channels"]["delivery"]
    assert delivery["address"] == "sg.deliver.{audience}.{organisation}.v1"
    audiences = delivery["parameters"]["audience"]["enum"]
    assert audiences == [audience.lower() for audience in AUDIENCES]
    organisations = delivery["parameters"]["organisation"]["examples"]
    for spec in declaration.all_topics():
        if spec.name.startswith("sg.deliver."):
            continue
        assert spec.name in addresses, spec.name
    for audience, orgs in declaration.deliveries.organisations.items():
        assert audience.lower() in audiences
        for org in orgs:
            assert org in organisations
            assert f"`{delivery_topic(audience, org)}`" in delivery["description"]
    assert [c["address"] for c in document["channels"].values() if "{" not in c["address"]] == [
        "sg.ingress.health.v1",
        "sg.ingress.police.v1",
        "sg.ingress.education.v1",
        "sg.ingress.local_authority.v1",
        "sg.consent.v1",
        "sg.identity.links.v1",
        "sg.status.v1",
        "sg.shares.v1",
        "sg.audit.decisions.v1",
        "sg.dlq.v1",
        "sg.dlq.replayed.v1",
        "sg.schemas.v1",
        "sg.checkpoints.v1",
    ]
    for channel in document["channels"].values():
        assert channel["bindings"]["kafka"]["partitions"] >= 1


def test_payloads_are_the_registered_avro_schemas_with_their_tags(generated: Path) -> None:
    import schemas

    document = yaml.safe_load(generated.read_text(encoding="utf-8"))
    messages = document["components"]["messages"]
    for message, record in (
        ("SafeguardingEvent", "SafeguardingEvent"),
        ("DeliveredEvent", "SafeguardingEvent"),
        ("ConsentRecord", "ConsentRecord"),
        ("ChildStatus", "ChildStatus"),
        ("AuditRecord", "AuditRecord"),
        ("AuditDecision", "AuditDecision"),
        ("DeadLetter", "DeadLetter"),
    ):
        payload = messages[message]["payload"]
        assert payload["schemaFormat"] == AVRO_FORMAT
        assert payload["schema"] == schemas.load(record)
        assert "confluent:tags" in json.dumps(payload["schema"])
        assert messages[message]["bindings"]["kafka"]["schemaIdLocation"] == "payload"


def test_headers_and_keys(generated: Path) -> None:
    document = yaml.safe_load(generated.read_text(encoding="utf-8"))
    messages = document["components"]["messages"]
    assert set(messages["DeadLetter"]["headers"]["properties"]) == {
        "sgb.reason",
        "sgb.origin.topic",
        "sgb.origin.partition",
        "sgb.origin.offset",
        "sgb.source.name",
        "sgb.source.position",
        "sgb.component",
    }
    signing = {KEY_ID_HEADER, SIGNATURE_HEADER, *TRACE_HEADERS}
    decision = {f"sgb.{name}" for name in DECISION_HEADERS}
    delivered = messages["DeliveredEvent"]["headers"]["properties"]
    assert set(delivered) == {"sgb.event_id", "sgb.policy_version", *decision, *signing}
    ingress = messages["SafeguardingEvent"]["headers"]["properties"]
    assert set(ingress) == signing
    for header in (delivered[SIGNATURE_HEADER], ingress[SIGNATURE_HEADER]):
        assert header["contentEncoding"] == "base64"
    assert all(
        "contentEncoding" in h or "UTF-8" in messages["DeliveredEvent"]["headers"]["description"]
        for h in delivered.values()
    )
    keys = {name: m["bindings"]["kafka"]["key"]["$ref"].rsplit("/", 1)[-1] for name, m in messages.items()}
    assert keys["SafeguardingEvent"] == keys["ConsentRecord"] == keys["ChildStatus"] == "ChildKey"
    assert keys["DeliveredEvent"] == "PseudonymisedChildKey"
    assert keys["AuditRecord"] == keys["AuditDecision"] == "EventId"
    for name in set(keys.values()):
        assert document["components"]["schemas"][name]["description"]


def test_operations_name_their_participant(generated: Path) -> None:
    document = yaml.safe_load(generated.read_text(encoding="utf-8"))
    tags = document["components"]["tags"]

    def who(op: dict[str, Any]) -> set[str]:
        return {tags[t["$ref"].rsplit("/", 1)[-1]]["name"] for t in op["tags"]}

    def channel(op: dict[str, Any]) -> str:
        return str(document["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"])

    by_participant: dict[str, set[tuple[str, str]]] = {}
    for op in document["operations"].values():
        assert op["action"] in ("send", "receive")
        assert op["description"].startswith("Participant")
        for participant in who(op):
            by_participant.setdefault(participant, set()).add((op["action"], channel(op)))
    filter_ops = by_participant["participant:filter"]
    for agency in ("health", "police", "education", "local_authority"):
        assert ("send", f"sg.ingress.{agency}.v1") in by_participant["participant:connector"]
        assert ("receive", f"sg.ingress.{agency}.v1") in filter_ops
    assert {
        ("receive", "sg.consent.v1"),
        ("receive", "sg.status.v1"),
        ("send", "sg.status.v1"),
        ("receive", "sg.identity.links.v1"),
        ("send", "sg.identity.links.v1"),
        ("send", "sg.deliver.{audience}.{organisation}.v1"),
        ("send", "sg.audit.decisions.v1"),
        ("send", "sg.dlq.v1"),
    } <= filter_ops
    assert ("receive", "sg.deliver.{audience}.{organisation}.v1") in by_participant["participant:hub"]
    operator = by_participant["participant:operator"]
    assert {("receive", "sg.dlq.v1"), ("receive", "sg.audit.decisions.v1")} <= operator
    assert not any(
        action == "send" and address.startswith("sg.deliver.")
        for participant, ops in by_participant.items()
        if participant != "participant:filter"
        for action, address in ops
    )
    group = document["operations"]["filterReceivesHealthEvents"]["bindings"]["kafka"]["groupId"]
    assert group["default"] == "sgb-filter"


def test_output_is_deterministic_and_json_matches_yaml(generated: Path, tmp_path: Path) -> None:
    again = sgb("schemas", "asyncapi")
    assert again.returncode == 0, again.stderr
    assert again.stdout == generated.read_text(encoding="utf-8")
    as_json = tmp_path / "sgb.asyncapi.json"
    result = sgb("schemas", "asyncapi", "--output", str(as_json))
    assert result.returncode == 0, result.stderr
    assert json.loads(as_json.read_text(encoding="utf-8")) == yaml.safe_load(again.stdout)


def test_unwritable_output_is_one_sentence(tmp_path: Path) -> None:
    result = sgb("schemas", "asyncapi", "--output", str(tmp_path / "missing" / "dir" / "out.yaml"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("sgb: ")]
    assert len(lines) == 1 and lines[0].endswith("."), result.stderr
