"""The Children in Need census return (DfE CIN census XML), read as facts.

``Message/Header/Source/LEA`` names the authority; each ``Message/Children/Child`` has
``ChildIdentifiers`` (``LAchildID``, ``UPN``, ``FormerUPN``, ``UPNunknown``,
``PersonBirthDate``, ``Sex``), ``ChildCharacteristics`` and ``CINdetails`` episodes, each with
``CINreferralDate``, ``ReferralSource``, ``PrimaryNeedCode``, ``CINclosureDate``,
``ReasonForClosure``, ``ReferralNFA``, and its ``Assessments``, ``Section47`` and
``ChildProtectionPlans`` modules.

Facts per child (see :mod:`connectors.runtime.snapshots`):

* ``referral_outcome``: a referral's outcome once it is known: no further action
  (``ReferralNFA``), a section 47 enquiry, or a section 17 assessment;
* ``section_47``: each ``Section47`` module (a strategy discussion decided on an enquiry);
* ``cpp_start`` / ``cpp_end``: each ``ChildProtectionPlans`` module, and its ``CPPendDate``;
* ``cin_plan_start`` / ``cin_plan_end``: each ``CINPlanDates`` module (a child in need plan,
  published as a ``CHILD_IN_NEED`` family help case opened and closed).

The referral's outcome carries the kinds of harm its assessments identified
(``Assessments/FactorsIdentifiedAtAssessment/AssessmentFactors``, the codes that name one).
Read and not published (no event carries them): CPP ``Reviews`` (held reviews, not the next
one) and the 2026 ``PreProceedingsandFGDM`` module.

The file is streamed one ``Child`` at a time (bounded memory). Positions name elements and
their index (``Child 12 / CINdetails 1 / ChildProtectionPlans 2``), never values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from connectors.exceptions import WrongSource
from connectors.local_authority.xmlstream import check, child, children, count_tag, lazy_bytes, stream, text
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord
from connectors.runtime.snapshots import Fact, date_key

CONTENT_TYPE = "application/xml"
IDENTIFIERS = (
    "LAchildID",
    "UPN",
    "FormerUPN",
    "UPNunknown",
    "PersonBirthDate",
    "ExpectedPersonBirthDate",
    "Sex",
)
CIN_FIELDS = (
    "CINreferralDate",
    "ReferralSource",
    "PrimaryNeedCode",
    "CINclosureDate",
    "ReasonForClosure",
    "ReferralNFA",
    "DateOfInitialCPC",
)
S47_FIELDS = ("S47ActualStartDate", "InitialCPCtarget", "DateOfInitialCPC", "ICPCnotRequired")
CPP_FIELDS = (
    "CPPstartDate",
    "CPPendDate",
    "InitialCategoryOfAbuse",
    "LatestCategoryOfAbuse",
    "NumberOfPreviousCPP",
)
_TRUE = ("1", "true", "yes", "y")


def _fields(elem: Element | None, names: tuple[str, ...]) -> dict[str, str | None]:
    return {name: text(elem, name) for name in names}


def is_true(value: str | None) -> bool:
    """A census boolean (``1``/``true``)."""
    return (value or "").strip().lower() in _TRUE


def child_facts(elem: Element, la_code: str | None, scope: str | None = None) -> list[tuple[str, Fact]]:
    """``(position suffix, fact)`` for one ``Child`` element, in document order; ``scope`` is the
    return's (:func:`return_scope`)."""
    ids = _fields(child(elem, "ChildIdentifiers"), IDENTIFIERS)
    la_id = (ids["LAchildID"] or "").strip()
    who = f"{la_code}|{la_id}"
    out = [
        (where, replace(fact, scope=scope, subject=who)) for where, fact in _facts(elem, ids, la_code, who)
    ]
    return out


def return_scope(header: Element, la_code: str | None) -> str | None:
    """The return's scope, ``cin|<LA>|<collection year>``, or None when the header does not name
    its year (such a return withdraws nothing, see :mod:`connectors.runtime.withdrawals`)."""
    details = child(header, "CollectionDetails")
    year = (text(details, "Year") or text(details, "ReferenceDate") or "").strip()
    return f"cin|{la_code}|{year}" if year and la_code else None


def _facts(
    elem: Element, ids: dict[str, str | None], la_code: str | None, who: str
) -> list[tuple[str, Fact]]:
    base = {"identifiers": ids, "la_code": la_code}
    out: list[tuple[str, Fact]] = []
    for i, cin in enumerate(children(elem, "CINdetails"), start=1):
        details = _fields(cin, CIN_FIELDS)
        referral = date_key(details["CINreferralDate"])
        s47s = children(cin, "Section47")
        assessments = children(cin, "Assessments")
        decision_date: str | None
        element = ""
        if is_true(details["ReferralNFA"]):
            element = "CINclosureDate" if details["CINclosureDate"] else "CINreferralDate"
            decision, decision_date = ("NO_FURTHER_ACTION", details[element])
        elif s47s:
            element = "Section47 1 / S47ActualStartDate"
            decision, decision_date = "SECTION_47_ENQUIRY", text(s47s[0], "S47ActualStartDate")
        elif assessments:
            element = "Assessments 1 / AssessmentActualStartDate"
            decision, decision_date = (
                "SECTION_17_ASSESSMENT",
                text(assessments[0], "AssessmentActualStartDate"),
            )
        else:
            decision, decision_date = "", None
        where = f"CINdetails {i}"
        factors = [
            (f.text or "").strip()
            for a in assessments
            for f in children(child(a, "FactorsIdentifiedAtAssessment"), "AssessmentFactors")
        ]
        if decision:
            out.append(
                (
                    where,
                    Fact(
                        "referral_outcome",
                        f"ref|{who}|{referral}|{decision}",
                        slot=f"ref|{who}|{referral}",
                        fields={
                            **base,
                            "cin": details,
                            "decision": decision,
                            "decision_date": decision_date,
                            "decision_element": element,
                            "factors": factors,
                        },
                    ),
                )
            )
        for j, s47 in enumerate(s47s, start=1):
            item = _fields(s47, S47_FIELDS)
            out.append(
                (
                    f"{where} / Section47 {j}",
                    Fact(
                        "section_47",
                        f"s47|{who}|{date_key(item['S47ActualStartDate'])}",
                        {**base, "cin": details, "item": item},
                    ),
                )
            )
        for k, plan in enumerate(children(cin, "ChildProtectionPlans"), start=1):
            item = _fields(plan, CPP_FIELDS)
            start = date_key(item["CPPstartDate"])
            data = {**base, "cin": details, "item": item}
            out.append(
                (f"{where} / ChildProtectionPlans {k}", Fact("cpp_start", f"cpp-start|{who}|{start}", data))
            )
            if item["CPPendDate"]:
                out.append(
                    (
                        f"{where} / ChildProtectionPlans {k} / CPPendDate",
                        Fact("cpp_end", f"cpp-end|{who}|{start}", data),
                    )
                )
        for m, plan in enumerate(children(cin, "CINPlanDates"), start=1):
            item = _fields(plan, ("CINPlanStartDate", "CINPlanEndDate"))
            start = date_key(item["CINPlanStartDate"])
            data = {**base, "cin": details, "item": item}
            out.append(
                (f"{where} / CINPlanDates {m}", Fact("cin_plan_start", f"cinp-start|{who}|{start}", data))
            )
            if item["CINPlanEndDate"]:
                out.append(
                    (
                        f"{where} / CINPlanDates {m} / CINPlanEndDate",
                        Fact("cin_plan_end", f"cinp-end|{who}|{start}", data),
                    )
                )
    return out


class CinCensusReader:
    """Reads CIN census XML returns as :class:`Fact` records.

    Args:
        la_code: the authority's code when the header does not say (or to check it against).
    """

    suffixes: tuple[str, ...] = (".xml",)
    content_type = CONTENT_TYPE

    def __init__(self, la_code: str | None = None) -> None:
        self.la_code = la_code

    def estimate(self, path: Path) -> int:
        return count_tag(path, b"Child")

    def check(self, ref: FileRef) -> None:
        """The whole file is well-formed XML (raises :class:`SourceFileError` otherwise) and
        its header names the authority ``--la`` gave, if any (:class:`WrongSource` otherwise)."""
        if not self.la_code:  # any authority's header is the return's own: expat alone, building nothing
            check(ref.path, ref.source)
            return
        for kind, elem, _ in stream(ref.path, ref.source, "Child", "Header"):
            if (
                kind == "header"
            ):  # every header: one naming another authority is refused before any is published
                self._authority(elem, ref.source)

    def _authority(self, header: Element, source: str) -> str | None:
        """The return's authority: ``--la`` and ``Header/Source/LEA`` must agree when both are given."""
        named = text(child(header, "Source"), "LEA")
        if self.la_code and named and named.strip() != self.la_code:
            msg = (
                f"File {source} is another local authority's return: its Header/Source/LEA is not "
                f"--la {self.la_code}; give the right --la, or none to use the header's."
            )
            raise WrongSource(msg)
        return self.la_code or (named.strip() if named else None)

    def records(self, ref: FileRef) -> Iterator[SourceRecord]:
        la_code = self.la_code
        scope = None
        ordinal = 0
        for kind, elem, n in stream(ref.path, ref.source, "Child", "Header"):
            if kind == "header":
                la_code = self._authority(elem, ref.source)
                scope = return_scope(elem, la_code)
                continue
            raw = lazy_bytes(elem)
            ids = child(elem, "ChildIdentifiers")
            facts: list[tuple[str, Any]]
            if not text(ids, "LAchildID"):
                facts = [("", Malformed("ChildIdentifiers/LAchildID is missing."))]
            elif not la_code:
                facts = [("", Malformed("The return does not name its local authority (Header/Source/LEA)."))]
            else:
                facts = list(child_facts(elem, la_code, scope))
            for suffix, data in facts:
                yield SourceRecord(
                    ref.connector,
                    ref.source,
                    ref.file_id,
                    ordinal,
                    f"Child {n}" + (f" / {suffix}" if suffix else ""),
                    data,
                    content_type=CONTENT_TYPE,
                    raw_of=raw,
                )
                ordinal += 1
