"""Issue 15's "done means": a dirty CIN census return and a full SSDA903 extract, shaped like
the public validator and regional-project samples (bad UPN check letters, pre-birth work, an
outcome dated before its referral, a header table repeating a child, a row of the wrong width,
every table of a full extract) with synthetic children.

Each is run twice with the dry-run delivery (no Kafka): once clean, once dirty. Every record is
accounted for, and the dirty run publishes exactly what the clean one does for every child whose
key is valid, less only the records the dirt makes untrustworthy, each dead-lettered with its
reason. ``-s`` prints the accounting per file, as the closing note gives it.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from factories import KeepingDelivery
from la_returns import bad_upn, cin
from structlog.testing import capture_logs
from test_connector_ssda903_as_sent import MISSING_COLUMNS, OTHER_TABLES

from broker.logs import DropUnknownKeys
from connectors.local_authority import CinCensusReader, LaMapper, LaProfile, Ssda903Reader
from connectors.local_authority import synthetic as syn
from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS
from connectors.runtime.checkpoint import CheckpointStore
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.summary import Summary
from schemas.identifiers import synthetic_upn

CHILDREN = 400
BAD_UPN = "child.upn withheld: UPN check letter does not match."


def run(reader: Any, system: str, source: Path, state: Path) -> tuple[Summary, KeepingDelivery]:
    delivery = KeepingDelivery()
    runner = FileConnector(
        "la-accounting", reader, LaMapper(LaProfile(), system), delivery, CheckpointStore(state)
    )
    return runner.run_batch(source, threading.Event()), delivery


def published(sent: KeepingDelivery) -> Counter[tuple[str, str, str]]:
    """What reached the wire, as a recipient would tell events apart: child, type and change."""
    return Counter(
        (e["child"]["la_child_id"], e["event_type"], str(e["details"].get("change") or ""))
        for e in sent.events
    )


def print_accounting(name: str, summary: Summary) -> None:
    c = summary.counts
    print(
        f"\n{name}: {c['read']} records in, {c['published']} published ({c['withheld']} with a withheld "
        f"or doubtful field), {c['dead_lettered']} dead-lettered, {c['no_event']} with nothing to publish; "
        f"tables skipped: {dict(summary.skipped_tables) or 'none'}"
    )
    for line in summary.report():
        print(f"    {line}")


def assert_accounted(summary: Summary) -> None:
    c = summary.counts
    assert c["read"] == c["published"] + c["dead_lettered"] + c["no_event"] + c["already_done"], (
        summary.line()
    )
    assert sum(summary.dead_letter_reasons.values()) == c["dead_lettered"]
    assert not summary.failed_files and not summary.unsupported


def test_a_dirty_cin_return_publishes_every_child_with_a_valid_key(tmp_path: Path) -> None:
    rng = random.Random(15)
    clean = list(syn.cin_children(CHILDREN, rng))
    dirty, bad_upns, backwards = [], set(), set()
    for i, kid in enumerate(clean):
        kid = dataclasses.replace(kid)
        referral = date.fromisoformat(kid.referral)
        if i % 10 == 1:  # a UPN with a wrong check letter: the LA's child id still keys the child
            kid.upn = bad_upn(rng)
            bad_upns.add(kid.la_child_id)
        if i % 20 == 5:  # an unborn child: born after the referral, the enquiry and the plan
            kid.birth = (referral + timedelta(days=90)).isoformat()
        if i % 40 == 3 and kid.s47:  # the section 47 dated before its referral: the outcome is doubtful
            kid.s47 = (referral - timedelta(days=2)).isoformat()
            backwards.add(kid.la_child_id)
        dirty.append(kid)
    assert bad_upns and backwards

    cin(tmp_path / "clean", *clean)
    cin(tmp_path / "dirty", *dirty)
    clean_summary, clean_sent = run(CinCensusReader(), "cin-census", tmp_path / "clean", tmp_path / "s1")
    summary, sent = run(CinCensusReader(), "cin-census", tmp_path / "dirty", tmp_path / "s2")
    print_accounting("dirty CIN census return (cin.xml)", summary)

    assert_accounted(clean_summary)
    assert_accounted(summary)
    assert clean_summary.counts["dead_lettered"] == 0 and not clean_sent.findings
    # Lost: only each backwards referral's outcome, dead-lettered naming the element.
    lost = published(clean_sent) - published(sent)
    assert set(lost) == {(child, "REFERRAL_OUTCOME", "") for child in backwards}
    assert not published(sent) - published(clean_sent)  # nothing invented
    assert summary.dead_letter_reasons == {
        "The referral's outcome (Section47 1 / S47ActualStartDate) is dated before CINreferralDate.": len(
            backwards
        )
    }
    # Withheld: the bad UPN on every published event of those children, and nothing else.
    bad_upn_events = sum(1 for e in sent.events if e["child"]["la_child_id"] in bad_upns)
    assert summary.withheld_reasons == {BAD_UPN: bad_upn_events}
    assert all(e["child"]["upn"] is None for e in sent.events if e["child"]["la_child_id"] in bad_upns)
    assert summary.counts["withheld"] == bad_upn_events


def uk(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def extract(
    rng: random.Random,
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """A local authority's looked-after children: header rows, episodes (one to three each, the
    last open for about a third) and missing episodes for about one in eight."""
    header, episodes, missing = [], [], []
    for i in range(CHILDREN):
        child = f"L{i:06d}"
        born = date(2006, 1, 1) + timedelta(days=rng.randrange(5000))
        header.append({"CHILD": child, "SEX": str(1 + i % 2), "DOB": uk(born), "ETHNIC": "WBRI",
                       "UPN": synthetic_upn(rng, "202")})  # fmt: skip
        start = date(2023, 4, 1) + timedelta(days=rng.randrange(200))
        for n in range(1 + i % 3):
            end = start + timedelta(days=30 + rng.randrange(60))
            last = n == i % 3
            row = {"CHILD": child, "DECOM": uk(start), "RNE": "S" if n == 0 else "P", "LS": "C2", "CIN": "N1",
                   "PLACE": "U1", "DEC": "" if last and i % 3 == 0 else uk(end),
                   "REC": "" if last and i % 3 == 0 else ("E11" if last else "X1")}  # fmt: skip
            episodes.append(row)
            start = end
        if i % 8 == 2:
            gone = date(2023, 6, 1) + timedelta(days=rng.randrange(100))
            missing.append({"CHILD": child, "DOB": uk(born), "MISSING": "M", "MIS_START": uk(gone),
                            "MIS_END": uk(gone + timedelta(days=2))})  # fmt: skip
    return header, episodes, missing


def write_extract(folder: Path, header: list[Any], episodes: list[Any], missing: list[Any]) -> None:
    folder.mkdir()
    syn.write_csv(folder / "header.csv", (*HEADER_COLUMNS, "UPN"), header)
    syn.write_csv(folder / "episodes.csv", EPISODE_COLUMNS, episodes)
    syn.write_csv(folder / "missing.csv", MISSING_COLUMNS, missing)
    for name, columns in OTHER_TABLES.items():
        syn.write_csv(folder / name, columns, [{"CHILD": h["CHILD"]} for h in header[:25]])


def test_a_full_ssda903_extract_publishes_every_child_with_a_valid_key(tmp_path: Path) -> None:
    header, episodes, missing = extract(random.Random(903))
    write_extract(tmp_path / "clean", header, episodes, missing)
    rng = random.Random(9031)
    dirty_header = [dict(h) for h in header]
    bad_upns = set()
    for i, row in enumerate(dirty_header):
        if i % 10 == 1:
            row["UPN"] = bad_upn(rng)
            bad_upns.add(row["CHILD"])
    twice = dirty_header[7]["CHILD"]  # the header repeats a child with another date of birth
    dirty_header.insert(8, {**dirty_header[7], "DOB": "21/03/2010"})
    write_extract(tmp_path / "dirty", dirty_header, episodes, missing)
    lines = (tmp_path / "dirty" / "episodes.csv").read_text(encoding="utf-8").splitlines()
    wide_row = next(n for n, line in enumerate(lines) if line.startswith("L000011,"))
    wide = lines[wide_row].split(",")[0]
    lines[wide_row] += ",extra"  # one field too many: that child must not look still (or no longer) in care
    (tmp_path / "dirty" / "episodes.csv").write_text("\n".join(lines) + "\n", encoding="cp1252")

    clean_summary, clean_sent = run(Ssda903Reader("202"), "ssda903", tmp_path / "clean", tmp_path / "s1")
    summary, sent = run(Ssda903Reader("202"), "ssda903", tmp_path / "dirty", tmp_path / "s2")
    print_accounting("full SSDA903 extract (12 tables)", summary)

    assert_accounted(clean_summary)
    assert_accounted(summary)
    skipped = {"header": 1, **{name.removesuffix(".csv"): 1 for name in OTHER_TABLES}}
    assert dict(clean_summary.skipped_tables) == dict(summary.skipped_tables) == skipped
    assert {k for k, _, _ in published(clean_sent)} == {h["CHILD"] for h in header}
    assert {t for _, t, _ in published(clean_sent)} == {"LOOKED_AFTER_STATUS", "MISSING_EPISODE"}
    # Lost: exactly the two held-back children, every one of their records dead-lettered with why.
    lost = published(clean_sent) - published(sent)
    assert {child for child, _, _ in lost} == {twice, wide}
    assert not published(sent) - published(clean_sent)
    reasons = Counter(r.split(":")[0] for r in summary.dead_letter_reasons.elements())
    assert set(reasons) == {"Held back", "The row has 14 fields but the header has 13."}
    assert summary.counts["dead_lettered"] == sum(lost.values()) + 1  # the wide row itself too
    # Withheld: the bad UPNs, on the events of those children that were published.
    bad_upn_events = sum(1 for e in sent.events if e["child"]["la_child_id"] in bad_upns)
    assert bad_upn_events and summary.withheld_reasons[BAD_UPN] == bad_upn_events


def test_an_operator_is_told_which_fields_were_withheld_never_their_values(tmp_path: Path) -> None:
    """The "fields withheld" log line names the schema paths; the log's allow-list keeps them."""
    upn = bad_upn(random.Random(4))
    kid = syn.CinChild("C1", upn, "2015-01-01", "2024-04-01", s47="2024-04-03")
    cin(tmp_path / "in", kid)
    with capture_logs() as logs:
        run(CinCensusReader(), "cin-census", tmp_path / "in", tmp_path / "state")
    lines = [DropUnknownKeys()(None, "warning", dict(e)) for e in logs if "withheld" in e["event"]]
    # The first record gets a line of its own, the second is counted in its batch's line.
    assert [(e["event"], e["withheld_fields"], e.get("count")) for e in lines] == [
        ("fields withheld", ["child.upn"], None),
        ("more records with fields withheld", ["child.upn"], 1),
    ]
    assert upn not in repr(lines)
