"""Shared pieces of the fuzz tests: hostile values, byte mutations, and the outcome check.

Every target is run the way the runtime runs it (reader, then mapping function, then the
Avro encoding a delivery does) and each record must end as exactly one of:

* an event that encodes (what would be published);
* a rejection with a reason: :class:`Malformed` data from the reader, a ``MappingError``, a
  ``SerdeError`` from the encoding (the pipeline dead-letters all three), or ``NoEvent``;
* for the whole file, a ``SourceFileError`` with a reason (nothing of the file is published).

Anything else (an uncaught exception, including the mapping bugs the pipeline's catch-all
would dead-letter with a generic reason) fails the property.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from broker.exceptions import SerdeError
from broker.wire.codecs import Codecs
from broker.wire.registry import InMemoryRegistry
from connectors.exceptions import MappingError, NoEvent, SourceFileError
from connectors.runtime.readers import FileRef, Malformed
from connectors.runtime.records import SourceRecord

_COMMON: dict[str, Any] = {
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
    "database": None,
    "print_blob": True,
}
settings.register_profile(
    "sgb-fuzz-ci",
    max_examples=int(os.environ.get("SGB_FUZZ_EXAMPLES", "400")),
    derandomize=True,
    # No per-example deadline: on a loaded 2-core runner a slow example is not a failure (the
    # suite's timeout bounds the run); what the fuzz tests assert is the outcome of each input.
    deadline=None,
    **_COMMON,
)
settings.register_profile(
    "sgb-fuzz-long", max_examples=int(os.environ.get("SGB_FUZZ_EXAMPLES", "2000")), deadline=10000, **_COMMON
)
#: ``ci`` (bounded, reproducible: ``make test``) or ``long`` (``make fuzz``).
PROFILE = os.environ.get("SGB_FUZZ_PROFILE", "ci")
#: The settings every fuzz test is decorated with.
FUZZ = settings.get_profile(f"sgb-fuzz-{PROFILE}")

#: Examples tried per target in this session (written out at the end, see conftest.py).
TRIED: Counter[str] = Counter()

#: A value planted in hostile inputs: it must never appear in a reason.
MARKER = "Zqxmarker"

CODECS = Codecs(InMemoryRegistry())

# -- hostile values --------------------------------------------------------------------------

HOSTILE_TEXT: list[str] = [
    "",
    " ",
    MARKER * 20_000,  # oversized field (180 kB)
    f"{MARKER}\x00{MARKER}",  # NUL byte
    "9" * 5_000,  # more digits than int() converts by default
    "99999999999999999999999",  # does not fit a long
    "-1",
    "1e999999",
    "NaN",
    "0x1F",
    "31/02/2024",
    "0000-00-00",
    "9999-12-31T23:59:59+99:99",
    "\ud800",  # a lone surrogate (not encodable as UTF-8)
    "\u202e\ufeff\u0000",
    "<![CDATA[x]]>",
    "&amp;&lt;&#0;",
    '"},{"a":',
    "\r\n\r\n",
    "MSH|^~\\&|",
]

HOSTILE_BYTES: list[bytes] = [
    b"\xff\xfe\xfa",  # invalid UTF-8
    b"\xc3\x28",
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\x00" * 64,
    b"[" * 5_000 + b"]" * 5_000,  # deep nesting
    b'{"a":' * 3_000 + b"1" + b"}" * 3_000,
    b"<a>" * 5_000 + b"</a>" * 5_000,
    b"\x1a\x1b\x04",
    b"\xef\xbb\xbf",  # a BOM in the middle
]


def hostile_text() -> st.SearchStrategy[str]:
    """A hostile field value: one of the list, or generated text with a marker in it."""
    generated = st.text(max_size=40).map(lambda t: f"{MARKER}{t}")
    return st.one_of(st.sampled_from(HOSTILE_TEXT), generated, st.integers().map(str))


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, snippets: Iterable[bytes] = ()) -> bytes:
    """``seed`` with a few mutations: truncation, bit flips, inserted, deleted or duplicated
    ranges, and hostile snippets spliced in at random places."""
    pool = list(HOSTILE_BYTES) + [s.encode("utf-8", "surrogatepass") for s in HOSTILE_TEXT] + list(snippets)
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "duplicate", "splice", "byte"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            i = min(at, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            end = min(len(data), at + draw(st.integers(1, 256)))
            data[at:at] = data[at:end]
        elif kind == "splice":
            data[at:at] = draw(st.sampled_from(pool))
        elif kind == "byte" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
    return bytes(data)


# -- running a file through a reader and a mapping -----------------------------------------


@dataclass
class Outcomes:
    """What became of one file."""

    events: list[tuple[SourceRecord, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (position, reason)
    skipped: int = 0
    file_error: str | None = None

    def reasons(self) -> list[str]:
        return [reason for _, reason in self.rejected] + ([self.file_error] if self.file_error else [])


def ref(path: Path, connector: str = "fuzz") -> FileRef:
    return FileRef(path, connector, path.name, "f" * 32)


def run_file(
    reader: Any,
    mapper: Callable[[SourceRecord], dict[str, Any]],
    path: Path,
    encode: Callable[[dict[str, Any]], bytes] | None = None,
) -> Outcomes:
    """Every record of ``path`` routed as the file pipeline routes it; any other exception escapes."""
    encode = encode or CODECS.event.encode
    out = Outcomes()
    try:
        for record in reader.records(ref(path)):
            if isinstance(record.data, Malformed):
                out.rejected.append((record.position, record.data.reason))
                continue
            try:
                event = mapper(record)
            except NoEvent:
                out.skipped += 1
                continue
            except MappingError as exc:
                out.rejected.append((record.position, str(exc)))
                continue
            try:
                encode(event)
            except SerdeError as exc:
                out.rejected.append((record.position, str(exc)))
                continue
            out.events.append((record, event))
            record.payload()  # a dead letter of it could be written
    except SourceFileError as exc:
        out.file_error = str(exc)
    return out


_ID_FIELDS = ("nhs_number", "upn", "la_child_id", "police_person_id", "local_id")
_PLAIN = re.compile(r"^[A-Za-z0-9]+$")


def check(
    out: Outcomes,
    *,
    secrets: Iterable[str] = (MARKER,),
    source_text: Callable[[SourceRecord], str] | None = None,
) -> None:
    """The properties every target shares: reasons are sentences without planted values, and
    each event's child identifiers come from its own record (never another child's)."""
    for reason in out.reasons():
        assert reason and isinstance(reason, str), "a rejection without a reason"
        for secret in secrets:
            assert secret not in reason, f"a reason quotes a value: {reason[:120]!r}"
    for record, event in out.events:
        child = event.get("child") or {}
        text = source_text(record) if source_text else record.payload().decode("utf-8", "replace")
        text = re.sub(r"[\s-]", "", text).upper()
        for name in _ID_FIELDS:
            value = child.get(name)
            if isinstance(value, str) and _PLAIN.match(value):
                assert re.sub(r"[\s-]", "", value).upper() in text, (
                    f"{name} of an event is not in its own record ({record.position})"
                )


def count(target: str) -> None:
    """Count one example tried for ``target``."""
    TRIED[target] += 1
