"""Per-child field encryption without Kafka: tokens, binding, erasure, the vault file, ``sgb erase``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from factories import domestic_abuse_incident
from structlog.testing import capture_logs

import schemas
from broker.security.ciphers import FilterCrypt, Revealer, cipher_for, policy_needs_plaintext
from broker.security.field_encryption import (
    ERASED,
    PREFIX,
    UNREADABLE,
    FieldCipher,
    FieldUnreadable,
    KeyErased,
    Plan,
)
from broker.security.key_directory import LocalKeyDirectory
from broker.security.key_vault import SqliteKeyVault, vault_path
from broker.settings import Settings
from consent import policy as policy_module
from schemas.child_keys import child_key

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", field_encryption="on")


@pytest.fixture
def cipher(settings: Settings) -> FieldCipher:
    return cipher_for(settings)


def _event(marker: str) -> tuple[dict[str, Any], str]:
    event = domestic_abuse_incident()
    event["narrative"] = f"Synthetic narrative {marker}"
    event["child"]["confidential_address"]["line1"] = f"Refuge {marker}"
    return event, child_key(event["child"]) or ""


def _opened(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` as a reader shows it after opening its tokens (sealed values put back)."""
    return {**event, "sealed_values": None}


def test_tagged_fields_are_sealed_and_open_again(cipher: FieldCipher) -> None:
    event, key = _event("NARR-A")
    sealed = cipher.seal(event, key)
    assert sealed["narrative"].startswith(PREFIX) and "NARR-A" not in sealed["narrative"]
    refuge = sealed["child"]["confidential_address"]
    assert all(refuge[k].startswith(PREFIX) for k in ("line1", "town", "postcode"))
    assert refuge["line2"] is None
    assert sealed["details"]["protective_measures"].startswith(PREFIX)  # NARRATIVE inside the details
    # Every personal field is sealed: identifiers, names, contact, third parties.
    child = sealed["child"]
    assert all(child[k].startswith(PREFIX) for k in ("nhs_number", "given_name", "family_name", "ethnicity"))
    assert all(v.startswith(PREFIX) for v in child["address"].values() if v is not None)
    assert sealed["related_people"][0]["given_name"].startswith(PREFIX)
    # A date of birth cannot hold a token: it is null, its token kept by path in sealed_values.
    assert child["date_of_birth"] is None and sealed["related_people"][0]["date_of_birth"] is None
    assert set(sealed["sealed_values"]) == {"child.date_of_birth", "related_people[0].date_of_birth"}
    # Routing fields (METADATA) stay as they are, and the input is not changed.
    assert (child["school_urn"], child["local_authority_code"]) == ("100000", "202")
    assert sealed["source"] == event["source"] and sealed["details"]["dash_risk_level"] == "MEDIUM"
    assert event["child"]["given_name"] == "Testy" and event["narrative"] == "Synthetic narrative NARR-A"
    assert cipher.is_sealed(sealed) and not cipher.is_sealed(event)
    assert cipher.seal(sealed, key) == sealed  # sealing twice changes nothing
    assert cipher.reveal(sealed) == _opened(event)


def test_the_plan_follows_the_tags_of_every_event_type() -> None:
    plan = Plan(schemas.load("SafeguardingEvent"))
    exploitation = plan.for_event_type("EXPLOITATION_CONCERN")[1]["details"][1]
    assert exploitation["locations_of_concern"] == ("array", "leaf")
    assert exploitation["concern_summary"] == "leaf"
    looked_after = plan.for_event_type("LOOKED_AFTER_STATUS")[1]["details"][1]
    assert set(looked_after) >= {"placement_address", "placement_local_authority_code"}
    envelope = plan.for_event_type("DOMESTIC_ABUSE_INCIDENT")[1]
    child = envelope["child"][1]
    assert (
        envelope["narrative"] == "leaf"
        and child["nhs_number"] == "leaf"
        and child["date_of_birth"] == "value"
    )
    assert {"confidential_address", "address", "given_name", "linked_identifiers"} <= set(child)
    assert not {"school_urn", "gp_practice_ods", "local_authority_code"} & set(child)  # routing: METADATA
    assert "source" not in envelope and "sealed_values" not in envelope


def test_a_token_moved_to_another_field_event_or_child_fails_authentication(cipher: FieldCipher) -> None:
    a, key_a = _event("NARR-A")
    b, key_b = _event("NARR-B")
    sealed_a, sealed_b = cipher.seal(a, key_a), cipher.seal(b, key_b)
    token = sealed_a["narrative"]
    with pytest.raises(FieldUnreadable):
        cipher.open_text(a["event_id"], "details.protective_measures", token)
    with pytest.raises(FieldUnreadable):
        cipher.open_text(b["event_id"], "narrative", token)
    moved = {**sealed_b, "narrative": token}
    with capture_logs() as logs:
        shown = cipher.reveal(moved)
    assert shown["narrative"] == UNREADABLE and shown["child"] == b["child"]
    assert logs and "NARR" not in repr(logs) and token not in repr(logs)
    altered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(FieldUnreadable):
        cipher.open_text(a["event_id"], "narrative", altered)
    with pytest.raises(FieldUnreadable):
        cipher.open_text(a["event_id"], "narrative", PREFIX + "not base64!")


def test_erasure_destroys_one_child_only_and_reaches_other_processes(settings: Settings) -> None:
    writer, reader = cipher_for(settings), cipher_for(settings)  # two processes sharing the vault
    a, key_a = _event("NARR-A")
    b, key_b = _event("NARR-B")
    sealed_a, sealed_b = writer.seal(a, key_a), writer.seal(b, key_b)
    assert reader.reveal(sealed_a) == _opened(a)  # the reader now holds A's key in its cache
    assert writer.vault.destroy(key_a) == 1
    shown = reader.reveal(sealed_a)
    assert shown["narrative"] == ERASED and shown["child"]["confidential_address"]["line1"] == ERASED
    assert shown["details"]["protective_measures"] == ERASED and shown["child"]["given_name"] == ERASED
    assert shown["child"]["date_of_birth"] is None and shown["child"]["nhs_number"] == ERASED
    with pytest.raises(KeyErased):
        reader.open_text(a["event_id"], "narrative", sealed_a["narrative"])
    assert reader.reveal(sealed_b) == _opened(b)
    assert writer.vault.destroy(key_a) == 0
    # A later event about the same child gets a new key; the erased copies stay erased.
    again = writer.seal(a, key_a)
    assert reader.reveal(again) == _opened(a) and reader.reveal(sealed_a)["narrative"] == ERASED


def test_the_vault_file_holds_no_plaintext_key_and_forgets_a_destroyed_one(settings: Settings) -> None:
    keys = LocalKeyDirectory(settings.state_dir / "keys")
    path = vault_path(settings.state_dir)
    vault = SqliteKeyVault(path, keys)
    kid, dek = vault.data_key("nhs:9990000018")
    other_kid, other = vault.data_key("police:TP-9")
    assert vault.data_key("nhs:9990000018") == (kid, dek) and vault.count() == 2
    data = path.read_bytes()
    assert dek not in data and other not in data and b"nhs:9990000018" not in data and b"TP-9" not in data
    assert kid in data
    db = sqlite3.connect(path)
    wrapped = db.execute("SELECT wrapped FROM data_keys WHERE kid = ?", (kid,)).fetchone()[0]
    db.close()
    assert wrapped in data
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert vault.destroy("nhs:9990000018") == 1
    vault.close()
    data = path.read_bytes()
    assert kid not in data and wrapped not in data and other_kid in data  # overwritten, not just unlinked
    assert SqliteKeyVault(path, keys).key_by_id(kid) is None


def test_a_vault_with_a_replaced_kek_stops_with_one_sentence(settings: Settings) -> None:
    keys = LocalKeyDirectory(settings.state_dir / "keys")
    vault = SqliteKeyVault(vault_path(settings.state_dir), keys)
    kid, _ = vault.data_key("nhs:9990000018")
    vault.close()
    (settings.state_dir / "keys" / "kek.key").write_bytes(os.urandom(32))
    from broker.exceptions import SgbError

    with pytest.raises(SgbError, match="key-encryption key cannot unwrap"):
        SqliteKeyVault(vault_path(settings.state_dir), keys).key_by_id(kid)


def test_hub_revealer_opens_tokens_and_leaves_clear_events_alone(
    settings: Settings, cipher: FieldCipher, tmp_path: Path
) -> None:
    a, key = _event("NARR-A")
    sealed = cipher.seal(a, key)
    assert Revealer(settings)(sealed) == _opened(a)
    assert Revealer(settings)(a) is a
    elsewhere = Settings(state_dir=tmp_path / "no-vault")
    shown = Revealer(elsewhere)(sealed)
    assert shown["narrative"] == UNREADABLE and not (tmp_path / "no-vault").exists()


def test_filter_opens_every_field_to_decide_and_fails_closed_on_erased_ones(
    settings: Settings, cipher: FieldCipher
) -> None:
    baseline = policy_module.load(policy_module.BASELINE)
    assert not policy_needs_plaintext(baseline)
    a, key = _event("NARR-A")
    sealed = cipher.seal(a, key)
    crypt = FilterCrypt(settings, baseline)
    # It reads what it decides on (NHS check digit, age, identity) and may reuse the sealed bytes.
    assert crypt.open(sealed) == (_opened(a), True)
    assert crypt.open(a) == (a, False)  # a clear event's bytes are never delivered as they are
    assert crypt.seal(a, key)["narrative"].startswith(PREFIX)
    assert crypt.seal(a, "") is a  # a notice that names no child has nothing to seal
    cipher.vault.destroy(key)
    opened, _ = crypt.open(sealed)
    assert opened["narrative"] is None and opened["child"]["confidential_address"]["line1"] is None
    assert opened["child"]["nhs_number"] is None and opened["child"]["date_of_birth"] is None

    # Encryption off: as before, tokens kept unless the policy transforms an encrypted tag ...
    b, key_b = _event("NARR-B")
    sealed_b = cipher.seal(b, key_b)
    off = FilterCrypt(Settings(state_dir=settings.state_dir), baseline)
    assert off.open(b) == (b, True) and off.seal(b, key_b) is b
    # ... but sealed values it would not redact are dropped, never passed on (fail closed).
    kept, reusable = off.open(sealed_b)
    assert kept["sealed_values"] is None and kept["narrative"] == sealed_b["narrative"] and not reusable
    masking = SimpleNamespace(rules=[SimpleNamespace(actions={"NARRATIVE": "MASK"})])
    off.use_policy(masking)
    opened, _ = off.open(sealed_b)
    assert opened["narrative"] == "Synthetic narrative NARR-B" and opened["child"]["date_of_birth"] is None


UNSEALED = "stays readable on the Kafka topics until its retention ends"


def _sgb(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SGB_STATE_DIR": str(settings.state_dir),
        "SGB_LOG_FORMAT": "json",
        "SGB_FIELD_ENCRYPTION": settings.field_encryption,
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-m", "sgb.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sgb_erase_destroys_the_key_and_names_the_child_only_by_a_hash(
    settings: Settings, cipher: FieldCipher
) -> None:
    a, key = _event("NARR-A")
    sealed = cipher.seal(a, key)
    nhs = a["child"]["nhs_number"]
    done = _sgb(settings, "erase", "--child", key, "--yes", "--keys-only")
    assert done.returncode == 0, done.stderr
    assert "1 data key destroyed" in done.stdout and UNSEALED not in done.stdout
    assert nhs not in done.stdout + done.stderr
    assert '"child_ref"' in done.stderr and "data key destroyed" in done.stderr
    assert cipher.reveal(sealed)["narrative"] == ERASED

    again = _sgb(settings, "erase", "--child", key, "--yes", "--keys-only")
    assert again.returncode == 1 and "No data key for child ref" in again.stderr and nhs not in again.stderr
    refused = _sgb(
        settings, "erase", "--child", key, "--keys-only"
    )  # no --yes and no answer: nothing happens
    assert refused.returncode != 0
    bad = _sgb(settings, "erase", "--child", "Testy Childe", "--yes", "--keys-only")
    assert bad.returncode == 1 and "--child key must look like" in bad.stderr
    empty = _sgb(
        Settings(state_dir=settings.state_dir / "elsewhere"), "erase", "--child", key, "--yes", "--keys-only"
    )
    assert empty.returncode == 1 and "No key vault" in empty.stderr


def test_sgb_erase_with_field_encryption_off_says_unsealed_fields_stay_until_retention_ends(
    tmp_path: Path,
) -> None:
    off = Settings(state_dir=tmp_path / "state")
    cipher_for(off).seal(_event("NARR-A")[0], "nhs:9990000018")  # a vault exists, as after a switch to off
    done = _sgb(off, "erase", "--child", "nhs:9990000018", "--yes", "--keys-only")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(UNSEALED) == 1 and "9990000018" not in done.stdout
