"""Field encryption benchmark: the per-event cost of sealing and opening the tagged fields.

    .venv/bin/python bench/fieldcrypt.py [--events 20000] [--repeat 5]

Uses the test factory's DOMESTIC_ABUSE_INCIDENT (every personal field sealed: identifiers,
names, addresses, the related person, case detail, the narrative; the two dates of birth
into ``sealed_values``) and a vault in a temporary directory. Prints microseconds per event
for each step the pipeline adds: sealing at publish, the child's pseudonymous message key,
the filter's check that an event is sealed and its opening of every field, opening at a
hub, and the encoded size before and after.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE.parent / "tests"),
]

from factories import domestic_abuse_incident

from broker.security.ciphers import FilterCrypt, child_namer, cipher_for
from broker.settings import Settings
from broker.wire.codecs import EventSerde
from broker.wire.registry import InMemoryRegistry
from consent import policy as policy_module
from schemas.child_keys import child_key


def micros(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Median microseconds per call over ``repeat`` runs of ``n`` calls."""
    results = []
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(n):
            fn()
        results.append((time.perf_counter() - began) / n * 1e6)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_dir=Path(tmp), field_encryption="on")
        cipher = cipher_for(settings)
        name = child_namer(settings)
        event = domestic_abuse_incident()
        key = child_key(event["child"]) or ""
        sealed = cipher.seal(event, key)
        serde = EventSerde(InMemoryRegistry())
        n, r = args.events, args.repeat
        print(f"seal at publish      {micros(lambda: cipher.seal(event, key), n, r):7.1f} us/event")
        fresh = (f"nhs:{i:010d}" for i in itertools.count())  # a new child each time: no cache hit
        print(f"pseudonymous key     {micros(lambda: name(next(fresh)), n, r):7.1f} us/event")
        print(f"filter is_sealed     {micros(lambda: cipher.is_sealed(sealed), n, r):7.1f} us/event")
        crypt = FilterCrypt(settings, policy_module.load(policy_module.BASELINE))
        print(f"filter open (all)    {micros(lambda: crypt.open(sealed), n, r):7.1f} us/event")
        print(f"open at hub          {micros(lambda: cipher.reveal(sealed), n, r):7.1f} us/event")
        print(f"avro encode (ref.)   {micros(lambda: serde.encode(event), n, r):7.1f} us/event")
        clear, closed = len(serde.encode(event)), len(serde.encode(sealed))
        print(f"encoded size         {clear} B clear, {closed} B sealed")


if __name__ == "__main__":
    main()
