"""Coverage-guided fuzzing (atheris) of the connectors' file readers and mappings, for
``make fuzz``; not collected by pytest.

    python tests/fuzz/atheris_files.py <target> -max_total_time=60

Targets: ``ctf``, ``cin`` (XML), ``police-json``, ``police-csv``, ``consent``, ``family-help``,
``fhir``, ``hl7``, ``ssda903``. Each input is written as a file and read and mapped as the
runtime does (see ``fuzzkit.run_file``); an exception other than a rejection with a reason,
or a reason quoting a value, stops the run with the input saved (crash-*).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1]), str(Path(__file__).parents[2])]

with atheris.instrument_imports(include=["connectors", "broker", "schemas", "fuzzkit"]):
    from fuzzkit import CODECS, check, run_file

    from connectors.education import CtfMapper, CtfReader
    from connectors.health import FhirMapper, FhirReader, Hl7FileReader, Hl7Mapper, load_profile
    from connectors.local_authority import (
        CaseSystemReader,
        CinCensusReader,
        LaMapper,
        LaProfile,
        Ssda903Reader,
    )
    from connectors.police import PoliceMapper, load_mapping, reader_for

MAPPINGS = Path(__file__).resolve().parents[2] / "connectors" / "mappings"


def _police(name: str) -> tuple[Any, Any]:
    mapping = load_mapping(MAPPINGS / name)
    return reader_for(mapping, None), PoliceMapper(mapping)


TARGETS: dict[str, tuple[str, Callable[[], tuple[Any, Any]], Any]] = {
    "ctf": ("x.xml", lambda: (CtfReader(), CtfMapper()), None),
    "cin": (
        "x.xml",
        lambda: (CinCensusReader("202"), LaMapper(LaProfile(la_code="202"), "cin-census")),
        None,
    ),
    "police-json": ("x.json", lambda: _police("police-exploitation-concern.yaml"), None),
    "police-csv": ("x.csv", lambda: _police("police-domestic-abuse.yaml"), None),
    "consent": (
        "x.json",
        lambda: (CaseSystemReader("consent", "202"), LaMapper(LaProfile(la_code="202"), "case-system")),
        CODECS.consent.encode,
    ),
    "family-help": (
        "x.csv",
        lambda: (CaseSystemReader("family-help", "202"), LaMapper(LaProfile(la_code="202"), "case-system")),
        None,
    ),
    "fhir": (
        "x.ndjson",
        lambda: (FhirReader(50), FhirMapper(load_profile(MAPPINGS / "health-example.yaml"))),
        None,
    ),
    "hl7": (
        "x.hl7",
        lambda: (Hl7FileReader(), Hl7Mapper(load_profile(MAPPINGS / "health-example.yaml"))),
        None,
    ),
    "ssda903": (
        "episodes.csv",
        lambda: (Ssda903Reader("202"), LaMapper(LaProfile(la_code="202"), "ssda903")),
        None,
    ),
}


def seeds(target: str, folder: Path) -> list[bytes]:
    """The valid files the property tests mutate, as the starting corpus."""
    import test_fuzz_health as health
    import test_fuzz_local_authority as la
    import test_fuzz_police as police
    import test_fuzz_xml as xml

    return {
        "ctf": lambda: [xml._seed("ctf", folder).encode()],
        "cin": lambda: [xml._seed("cin", folder).encode()],
        "police-json": lambda: [police.SEEDS["exploitation"][2]],
        "police-csv": lambda: [police.SEEDS["domestic"][2]],
        "consent": lambda: [la.CONSENT_JSON],
        "family-help": lambda: [la._csv(la.CASE_COLUMNS, la.CASE_ROWS)],
        "fhir": lambda: [health.NDJSON],
        "hl7": lambda: [health.HL7_FILE],
        "ssda903": lambda: [la.SEED_EPISODES],
    }[target]()


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [corpus dir]")
    target = sys.argv.pop(1)
    name, make, encode = TARGETS[target]
    reader, mapper = make()
    work = Path(tempfile.mkdtemp(prefix="sgb-atheris-"))
    path = work / name
    if target == "ssda903":
        import test_fuzz_local_authority as la

        (work / "header.csv").write_bytes(la.SEED_HEADER)
    if not any(not arg.startswith("-") for arg in sys.argv[1:]):
        corpus = work / "corpus"
        corpus.mkdir()
        for i, seed in enumerate(seeds(target, work)):
            (corpus / f"seed-{i}").write_bytes(seed)
        sys.argv.append(str(corpus))

    # A FHIR event's child comes from the Patient it refers to (another line), an SSDA903 one
    # partly from the header table: their identifiers are checked against the whole input.
    whole = target in ("fhir", "ssda903")
    header = (work / "header.csv").read_text("utf-8") if target == "ssda903" else ""

    def one_input(data: bytes) -> None:
        path.write_bytes(data)
        text = header + data.decode("utf-8", "replace")
        check(run_file(reader, mapper, path, encode), source_text=(lambda record: text) if whole else None)

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
