"""Pseudonymous child keys: one child, one key that names no one without the secret."""

from __future__ import annotations

from pathlib import Path

from factories import domestic_abuse_incident

from broker.security.ciphers import child_namer
from broker.security.key_directory import LocalKeyDirectory
from broker.security.pseudonyms import ChildPseudonyms, is_pseudonym
from broker.settings import Settings
from broker.wire.codecs import EventSerde
from broker.wire.envelope import IngressEnvelope
from broker.wire.registry import InMemoryRegistry
from schemas.child_keys import identifier_kind, identifier_namespace


def test_a_pseudonym_is_stable_keeps_the_namespace_and_hides_the_identifier(tmp_path: Path) -> None:
    name = ChildPseudonyms(LocalKeyDirectory(tmp_path / "keys"))
    again = ChildPseudonyms(LocalKeyDirectory(tmp_path / "keys"))  # another process, same secret
    for key in ("nhs:9990000018", "la:202:C-1", "police:TP-9", "upn:A123456789012", "lpi:RX1:MRN-7"):
        pseudonym = name(key)
        assert pseudonym == again(key) and is_pseudonym(pseudonym) and name(pseudonym) == pseudonym
        assert identifier_namespace(pseudonym) == identifier_namespace(key)  # who issued it still holds
        assert identifier_kind(pseudonym) == identifier_kind(key)
        assert key.split(":")[-1] not in pseudonym
    assert name("nhs:9990000018") != name("nhs:9990000026")
    other = ChildPseudonyms(LocalKeyDirectory(tmp_path / "other-keys"))  # another secret: another name
    assert other("nhs:9990000018") != name("nhs:9990000018")
    assert (tmp_path / "keys" / "child-pseudonym.key").stat().st_mode & 0o077 == 0


def test_with_field_encryption_off_keys_stay_as_they_are(tmp_path: Path) -> None:
    assert child_namer(Settings(state_dir=tmp_path))("nhs:9990000018") == "nhs:9990000018"
    on = child_namer(Settings(state_dir=tmp_path, field_encryption="on"))
    assert on("nhs:9990000018").startswith("nhs:~")


def test_the_ingress_envelope_keys_by_pseudonym_and_an_erasure_notice_names_no_child(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", field_encryption="on")
    serde = EventSerde(InMemoryRegistry())
    envelope = IngressEnvelope(settings, "POLICE", serde=serde)
    event = domestic_abuse_incident()
    nhs = event["child"]["nhs_number"]
    wire = envelope.wrap(event)
    assert wire.key == child_namer(settings)(f"nhs:{nhs}").encode()
    assert nhs.encode() not in wire.key + wire.value and b"Testy" not in wire.value
    notice = {**event, "child": dict.fromkeys(event["child"]), "correction": None}
    keyed = envelope.wrap(notice, f"nhs:{nhs}")  # sgb erase: the child only as the message key
    assert keyed.key == wire.key and nhs.encode() not in keyed.value
    off = IngressEnvelope(Settings(state_dir=tmp_path / "off"), "POLICE", serde=serde)
    assert off.wrap(event).key == f"nhs:{nhs}".encode()  # encryption off: as before
