"""Coverage-guided fuzzing (atheris) of Avro decoding, for ``make fuzz``; not collected by pytest.

    python tests/fuzz/atheris_avro.py -max_total_time=60

Each input is decoded by every serde as it is, and behind the event's own framing header
(the corpus starts from a valid event's Avro body);
anything but a record or a ``SerdeError`` stops the run with the input saved (crash-*).
"""

from __future__ import annotations

import struct
import sys
import tempfile
from pathlib import Path

import atheris

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1]), str(Path(__file__).parents[2])]

with atheris.instrument_imports(include=["broker", "schemas", "fuzzkit"]):
    from fuzzkit import CODECS

    from broker.exceptions import SerdeError

SERDES = [CODECS.event, CODECS.audit, CODECS.dead_letter, CODECS.consent, CODECS.status]
HEADER = struct.pack(">bI", 0, CODECS.event.schema_id)


def one_input(data: bytes) -> None:
    for serde in SERDES:
        for framed in (data, HEADER + data):
            try:
                record = serde.decode(framed)
            except SerdeError:
                continue
            assert isinstance(record, dict)


def main() -> None:
    if not any(not arg.startswith("-") for arg in sys.argv[1:]):
        from factories import domestic_abuse_incident

        corpus = Path(tempfile.mkdtemp(prefix="sgb-atheris-avro-"))
        (corpus / "event").write_bytes(CODECS.event.encode(domestic_abuse_incident())[5:])
        sys.argv.append(str(corpus))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
