"""The local-authority connector on the real broker, through `sgb connector run`: a CIN census
return published as changes only, unmatched children keyed by the authority's id, bad records
dead-lettered with element and reason, and consent records on sg.consent.v1."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.local_authority import synthetic as syn
from schemas.child_keys import consent_key
from schemas.identifiers import synthetic_nhs_number
from tests.conftest import sgb_env
from tests.integration.test_connector_files import read_all

SGB = "import sys; from sgb.cli import main; main(sys.argv[1:])"

pytestmark = pytest.mark.kafka


def la_run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", SGB, "connector", "run", "local_authority", *args],
        env=sgb_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_cin_census_returns_publish_only_changes(kafka: Settings, tmp_path: Path) -> None:
    rng = random.Random(7)
    kids = list(syn.cin_children(40, rng))  # every 4th: NFA; 2nd/3rd of 4: S47; 4th of 4: a plan
    xref = syn.write_xref(tmp_path / "xref.csv", [k.la_child_id for k in kids[:20]], rng)
    first = syn.write_cin(tmp_path / "cin-2024.xml", kids)

    result = la_run(kafka, "--source", str(first), "--format", "cin", "--xref", str(tmp_path / "xref.csv"))
    # 10 NFA outcomes + 20 S47 children (outcome + discussion) + 10 plans = 60 facts.
    assert "60 read, 60 published, 0 dead-lettered" in result.stdout, result.stdout
    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.local_authority.v1")]
    assert len(events) == 60
    matched = {e["child"]["la_child_id"] for e in events if e["child"]["nhs_number"]}
    assert matched <= set(xref) and all(
        e["child"]["nhs_number"] == xref[e["child"]["la_child_id"]]
        for e in events
        if e["child"]["nhs_number"]
    )
    unmatched = {e["child"]["la_child_id"] for e in events} - matched
    assert f"{len(unmatched)} child(ren) published without an NHS number" in result.stdout
    keys = {m.key().decode() for m in read_all(kafka, "sg.ingress.local_authority.v1")}
    assert {f"la:202:{i}" for i in unmatched} <= keys

    # Re-running the same return publishes nothing.
    again = la_run(kafka, "--source", str(first), "--format", "cin", "--xref", str(tmp_path / "xref.csv"))
    assert "0 published" in again.stdout

    # Next return: one plan ends, one date is impossible; everything else restated unchanged.
    kids[3].cpp_end = "01/10/2024"
    kids[7].cpp_end = "31/09/2024"
    second = syn.write_cin(tmp_path / "cin-2025.xml", kids)
    result = la_run(kafka, "--source", str(second), "--format", "cin", "--xref", str(tmp_path / "xref.csv"))
    assert (
        "62 read, 1 published, 1 dead-lettered, 0 skipped as already done, 60 with nothing" in result.stdout
    )
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.local_authority.v1")]
    ended = [
        e for e in events if e["event_type"] == "CHILD_PROTECTION_PLAN" and e["details"]["change"] == "ENDED"
    ]
    assert [e["child"]["la_child_id"] for e in ended] == [kids[3].la_child_id]
    dead = [codecs.dead_letter.decode(m.value()) for m in read_all(kafka, "sg.dlq.v1")]
    assert len(dead) == 1
    assert dead[0]["reason"] == "CPPendDate is not a real date."
    assert "Child 8 / CINdetails 1 / ChildProtectionPlans 1 / CPPendDate" in str(dead[0])


def test_consent_export_goes_to_the_consent_topic(kafka: Settings, tmp_path: Path) -> None:
    rng = random.Random(8)
    nhs = synthetic_nhs_number(rng)
    export = syn.write_csv(
        tmp_path / "consents.csv",
        ["ConsentID", "LAchildID", "NHSnumber", "Audience", "State", "GivenBy", "RecordedAt", "RecordedBy"],
        [
            {
                "ConsentID": "S1",
                "LAchildID": "F1",
                "NHSnumber": nhs,
                "Audience": "FAMILY_HELP",
                "State": "GIVEN",
                "GivenBy": "PARENT",
                "RecordedAt": "2025-01-02T09:00:00Z",
                "RecordedBy": "Family help hub",
            },
            {
                "ConsentID": "S2",
                "LAchildID": "F2",
                "Audience": "FAMILY_HELP",
                "State": "REFUSED",
                "RecordedAt": "03/01/2025",
                "RecordedBy": "Family help hub",
            },
        ],
    )
    result = la_run(kafka, "--source", str(export), "--format", "consent", "--la", "202")
    assert "2 read, 2 published" in result.stdout
    codecs = Codecs(registry_for(kafka))
    messages = read_all(kafka, "sg.consent.v1")
    records = {m.key().decode(): codecs.consent.decode(m.value()) for m in messages}
    assert set(records) == {consent_key(r) for r in records.values()}
    assert records[f"nhs:{nhs}|FAMILY_HELP|FAMILY_HELP"]["state"] == "GIVEN"
    assert records["la:202:F2|FAMILY_HELP|FAMILY_HELP"]["state"] == "REFUSED"
    assert "1 child(ren) published without an NHS number" in result.stdout


def test_ssda903_folder_publishes_periods_of_care(kafka: Settings, tmp_path: Path) -> None:
    from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS

    folder = tmp_path / "903"
    folder.mkdir()
    syn.write_csv(folder / "header.csv", HEADER_COLUMNS, [{"CHILD": "L1", "SEX": "1", "DOB": "01/02/2012"}])
    syn.write_csv(
        folder / "episodes.csv",
        EPISODE_COLUMNS,
        [
            {"CHILD": "L1", "DECOM": "01/04/2023", "LS": "C2", "CIN": "N1", "PLACE": "U1",
             "DEC": "01/06/2023", "REC": "E11"},
            {"CHILD": "L2", "DECOM": "2023-13-01", "LS": "C2", "CIN": "N1", "PLACE": "U1"},
        ],
    )  # fmt: skip
    result = la_run(kafka, "--source", str(folder), "--format", "ssda903", "--la", "202")
    assert "2 file(s): 3 read, 2 published, 1 dead-lettered" in result.stdout, result.stdout
    codecs = Codecs(registry_for(kafka))
    events = [codecs.event.decode(m.value()) for m in read_all(kafka, "sg.ingress.local_authority.v1")]
    assert sorted(e["details"]["change"] for e in events) == ["ENDED", "STARTED"]
    assert {e["child"]["date_of_birth"].isoformat() for e in events} == {"2012-02-01"}
