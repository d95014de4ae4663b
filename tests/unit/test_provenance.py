"""Provenance without Kafka: signing keys, the trust store, rotation, retirement and every rejection."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from broker.exceptions import SgbError
from broker.security import provenance
from broker.security.provenance import SIGNATURE_HEADER, Provenance, ProvenanceReason, Signer, Verifier
from broker.security.signing_keys import KeyStore, KeyStoreError
from broker.settings import Settings
from sgb.cli.keys import keys
from sgb.cli.root import Context

POLICE_IN, HEALTH_IN = "sg.ingress.police.v1", "sg.ingress.health.v1"
SCHOOL = "sg.deliver.school_dsl.100000.v1"
VALUE, KEY = b"\x00\x00\x00\x00\x01avro bytes of one event", b"nhs:9990000018"


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys")


def reason(
    verifier: Verifier, topic: str, key: bytes | None, value: bytes, headers: Any
) -> ProvenanceReason | None:
    rejected = verifier.check(topic, key, value, headers)
    return None if rejected is None else rejected.reason


def test_a_signed_message_verifies_and_the_key_files_are_owner_only(store: KeyStore) -> None:
    headers = Signer(store, "police").headers(POLICE_IN, KEY, VALUE)
    assert reason(Verifier(store), POLICE_IN, KEY, VALUE, headers) is None
    [key_file] = (store.signing_dir / "police").glob("*.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((store.signing_dir / "police").stat().st_mode) == 0o700
    assert dict(headers)["sgb.key_id"].decode().startswith("police-")


def test_every_kind_of_bad_provenance_is_named(store: KeyStore) -> None:
    verifier_store = store
    police, health, filter_ = Signer(store, "police"), Signer(store, "health"), Signer(store, "filter")
    verifier = Verifier(verifier_store)
    good = police.headers(POLICE_IN, KEY, VALUE)
    forged_signature = [(n, bytes(64) if n == SIGNATURE_HEADER else v) for n, v in good]
    unknown = [("sgb.key_id", b"police-0123456789abcdef"), (SIGNATURE_HEADER, dict(good)[SIGNATURE_HEADER])]
    assert reason(verifier, POLICE_IN, KEY, VALUE, None) is ProvenanceReason.UNSIGNED
    assert reason(verifier, POLICE_IN, KEY, VALUE, good[:1]) is ProvenanceReason.UNSIGNED
    assert reason(verifier, POLICE_IN, KEY, VALUE + b"!", good) is ProvenanceReason.BAD_SIGNATURE
    assert reason(verifier, POLICE_IN, b"nhs:other", VALUE, good) is ProvenanceReason.BAD_SIGNATURE
    assert reason(verifier, POLICE_IN, KEY, VALUE, forged_signature) is ProvenanceReason.BAD_SIGNATURE
    assert reason(verifier, POLICE_IN, KEY, VALUE, unknown) is ProvenanceReason.UNKNOWN_KEY
    # A key is bound to its signer's agency: police may not write health ingress, even
    # if it signs for that topic; hubs accept only the filter's key.
    assert (
        reason(verifier, HEALTH_IN, KEY, VALUE, police.headers(HEALTH_IN, KEY, VALUE))
        is ProvenanceReason.SIGNER_NOT_ALLOWED
    )
    assert (
        reason(verifier, SCHOOL, KEY, VALUE, health.headers(SCHOOL, KEY, VALUE))
        is ProvenanceReason.SIGNER_NOT_ALLOWED
    )
    assert (
        reason(verifier, POLICE_IN, KEY, VALUE, filter_.headers(POLICE_IN, KEY, VALUE))
        is ProvenanceReason.SIGNER_NOT_ALLOWED
    )
    assert reason(verifier, SCHOOL, KEY, VALUE, filter_.headers(SCHOOL, KEY, VALUE)) is None
    # The topic is signed: a delivery copied to another school's topic does not verify.
    copied = filter_.headers(SCHOOL, KEY, VALUE)
    other_school = "sg.deliver.school_dsl.100001.v1"
    assert reason(verifier, other_school, KEY, VALUE, copied) is ProvenanceReason.BAD_SIGNATURE
    rejected = verifier.check(POLICE_IN, KEY, VALUE + b"!", good)
    assert rejected is not None and rejected.sentence.startswith("bad_signature: ")
    assert VALUE.decode(errors="ignore") not in rejected.sentence


def test_an_organisation_signer_may_write_its_agency_ingress_only(store: KeyStore) -> None:
    org = Signer(store, "police.NPCC01")
    verifier = Verifier(store)
    assert reason(verifier, POLICE_IN, KEY, VALUE, org.headers(POLICE_IN, KEY, VALUE)) is None
    assert (
        reason(verifier, HEALTH_IN, KEY, VALUE, org.headers(HEALTH_IN, KEY, VALUE))
        is ProvenanceReason.SIGNER_NOT_ALLOWED
    )
    with pytest.raises(KeyStoreError, match="Signer 'fire' is not"):
        Signer(store, "fire")


def test_rotation_and_retirement_need_no_restart(store: KeyStore) -> None:
    signer, verifier = Signer(store, "police"), Verifier(store)
    old = signer.headers(POLICE_IN, KEY, VALUE)
    old_id = signer.key_id
    new_entry = store.rotate("police")
    new = signer.headers(POLICE_IN, KEY, VALUE)
    assert signer.key_id == new_entry.key_id != old_id  # the running signer switched
    assert reason(verifier, POLICE_IN, KEY, VALUE, old) is None  # both keys valid
    assert reason(verifier, POLICE_IN, KEY, VALUE, new) is None
    with pytest.raises(KeyStoreError, match="signs with now"):
        store.retire(new_entry.key_id)
    store.retire(old_id)
    assert reason(verifier, POLICE_IN, KEY, VALUE, old) is ProvenanceReason.RETIRED_KEY
    assert reason(verifier, POLICE_IN, KEY, VALUE, new) is None
    with pytest.raises(KeyStoreError, match="retired"):
        store.activate(old_id)


def test_a_staged_key_is_trusted_before_it_signs(store: KeyStore) -> None:
    signer = Signer(store, "filter")
    first = signer.key_id
    staged = store.rotate("filter", activate=False)
    signer.headers(SCHOOL, KEY, VALUE)
    assert signer.key_id == first
    store.activate(staged.key_id)
    signer.headers(SCHOOL, KEY, VALUE)
    assert signer.key_id == staged.key_id


def test_a_public_key_moves_to_another_machine_and_is_checked(store: KeyStore, tmp_path: Path) -> None:
    signer = Signer(store, "filter")
    exported = store.export("filter").to_json()
    assert "private" not in json.dumps(exported)
    hub = KeyStore(tmp_path / "hub-keys")
    verifier = Verifier(hub)
    headers = signer.headers(SCHOOL, KEY, VALUE)
    assert reason(verifier, SCHOOL, KEY, VALUE, headers) is ProvenanceReason.UNKNOWN_KEY
    hub.trust(exported, "filter.json")
    assert reason(verifier, SCHOOL, KEY, VALUE, headers) is None  # the running verifier re-read its store
    # A retirement travels too, and a retired key is never made valid again.
    store.rotate("filter")
    hub.trust(store.retire(exported["key_id"]).to_json(), "retired.json")
    hub.trust(exported, "filter.json")
    assert reason(verifier, SCHOOL, KEY, VALUE, headers) is ProvenanceReason.RETIRED_KEY
    # An entry whose id is not its key's is refused: a key cannot be claimed for another signer.
    claimed = dict(exported, signer="police")
    with pytest.raises(KeyStoreError, match="does not match"):
        hub.trust(claimed, "claimed.json")


def test_a_damaged_trust_entry_stops_the_start_and_is_ignored_later(store: KeyStore) -> None:
    signer = Signer(store, "police")
    headers = signer.headers(POLICE_IN, KEY, VALUE)
    verifier = Verifier(store)
    (store.trust_dir / "police-0123456789abcdef.json").write_text("{not json")
    with pytest.raises(SgbError, match="is not JSON"):
        Verifier(store)
    assert reason(verifier, POLICE_IN, KEY, VALUE, headers) is None


def test_two_processes_making_a_first_key_agree_on_one(tmp_path: Path) -> None:
    found: list[str] = []
    barrier = threading.Barrier(4)

    def make() -> None:
        barrier.wait()
        found.append(KeyStore(tmp_path / "keys").active("filter")[0])

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = KeyStore(tmp_path / "keys")
    assert set(found) == {store.active_key_id("filter")}
    assert list(store.trusted()) == found[:1]


def test_provenance_signs_logical_topics_and_is_off_by_default(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", topic_prefix="t1.")
    assert provenance.for_process(settings, "police") is None
    on = provenance.for_process(settings.model_copy(update={"provenance": True}), "police")
    assert isinstance(on, Provenance)

    class Msg:
        def __init__(self, topic: str, headers: list[tuple[str, bytes]]) -> None:
            self._topic, self._headers = topic, headers

        def topic(self) -> str:
            return self._topic

        def key(self) -> bytes:
            return KEY

        def value(self) -> bytes:
            return VALUE

        def headers(self) -> list[tuple[str, bytes]]:
            return self._headers

    headers = on.sign("t1." + POLICE_IN, KEY, VALUE)
    assert on.check(Msg("t1." + POLICE_IN, headers)) is None
    # Another deployment's prefix signs the same logical topic.
    other = Provenance(settings.model_copy(update={"topic_prefix": "t2."}))
    assert other.check(Msg("t2." + POLICE_IN, headers)) is None


def test_a_batch_verified_on_all_cores_gives_each_message_its_own_answer(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", provenance=True)
    police = Provenance(settings, "police")
    filter_ = Provenance(settings)

    class Msg:
        def __init__(self, value: bytes, headers: list[tuple[str, bytes]]) -> None:
            self._value, self._headers = value, headers

        def topic(self) -> str:
            return POLICE_IN

        def key(self) -> bytes:
            return KEY

        def value(self) -> bytes:
            return self._value

        def headers(self) -> list[tuple[str, bytes]]:
            return self._headers

    batch = []
    for i in range(64):
        value = VALUE + str(i).encode()
        headers = police.sign(POLICE_IN, KEY, value)
        batch.append(Msg(value if i % 3 else value + b"!", headers if i % 5 else []))
    expected = [
        None if (i % 3 and i % 5) else ("unsigned" if not i % 5 else "bad_signature") for i in range(64)
    ]
    filter_.prepare(batch)
    answers = [filter_.check(m) for m in batch]
    assert [a.reason.value if a else None for a in answers] == expected


def test_keys_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGB_STATE_DIR", str(tmp_path / "state"))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(keys, list(args), obj=Context(None))
        assert result.exit_code == 0, result.output
        return result.output

    assert "No keys yet" in run("list")

    def made(output: str) -> str:
        return next(line.split()[0] for line in output.splitlines() if " made for health" in line)

    first, second = made(run("rotate", "health")), made(run("rotate", "health"))
    listing = run("list")
    assert f"{first}" in listing and f"{second}" in listing and "active" in listing
    exported = run("export", "health")
    exported = exported[exported.index("{\n") :]
    assert json.loads(exported)["key_id"] == second
    run("retire", first)
    assert "retired" in run("list")
    bad = runner.invoke(keys, ["retire", second], obj=Context(None))
    assert bad.exit_code != 0 and isinstance(bad.exception, KeyStoreError)
    (tmp_path / "h.json").write_text(exported)
    monkeypatch.setenv("SGB_STATE_DIR", str(tmp_path / "other"))
    assert "trusted." in run("trust", str(tmp_path / "h.json"))


def test_the_signature_header_is_base64_text_and_raw_bytes_are_still_accepted(store: KeyStore) -> None:
    import base64

    headers = dict(Signer(store, "police").headers(POLICE_IN, KEY, VALUE))
    text = headers[SIGNATURE_HEADER]
    assert len(text) == 88 and text.decode("ascii") == base64.b64encode(base64.b64decode(text)).decode()
    verifier = Verifier(store)
    assert reason(verifier, POLICE_IN, KEY, VALUE, list(headers.items())) is None
    raw = {**headers, SIGNATURE_HEADER: base64.b64decode(text)}  # as the previous release wrote it
    assert reason(verifier, POLICE_IN, KEY, VALUE, list(raw.items())) is None
    garbled = {**headers, SIGNATURE_HEADER: b"not base64 at all!"}
    assert reason(verifier, POLICE_IN, KEY, VALUE, list(garbled.items())) is ProvenanceReason.BAD_SIGNATURE
