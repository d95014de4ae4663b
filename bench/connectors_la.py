"""Schools' and local authorities' connectors, all in one run on one broker, each against raw
produce of the same pre-encoded records in the same run:

  (a) CIN census XML: children/s and events/s through the connector (stream, map, snapshot
      diff, transactions), against raw transactional produce of its events;
  (b) SSDA903 episodes CSV: rows/s through the connector, against raw produce of its events;
  (c) the schools' webhook (`sgb connector serve-webhook`, its own process) over HTTP: requests/s
      and p50/p99 latency with N concurrent senders each waiting for its 202, against awaited
      acks=all produce at the same concurrency. The senders keep a connection each and write
      ready-made requests (`--client httpx` for httpx, which costs more CPU than the server);
      `--baseline-tree DIR` runs the same first with DIR's webhook (`git worktree add --detach
      DIR main`); `--profile-webhook FILE` keeps the server's cProfile statistics.

    .venv/bin/python bench/connectors_la.py [--children 20000] [--episodes 40000] [--requests 3000]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

# bench/connectors.py would shadow the connectors package: the repository first, bench/ last.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE), str(_HERE)]

from _kafka import bench_kafka
from _webhook import webhooks

from broker.clients import producer
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.registry import registry_for
from connectors.assembly import snapshot_parts
from connectors.exceptions import MappingError, NoEvent
from connectors.local_authority import CinCensusReader, LaMapper, LaProfile, Ssda903Reader
from connectors.local_authority import synthetic as la_syn
from connectors.local_authority.ssda903 import EPISODE_COLUMNS, HEADER_COLUMNS
from connectors.runtime.checkpoint import CheckpointStore
from connectors.runtime.delivery import TransactionalDelivery
from connectors.runtime.pipeline import FileConnector
from connectors.runtime.progress import Progress
from connectors.runtime.readers import FileRef
from connectors.runtime.snapshot_store import SnapshotStore
from connectors.runtime.snapshots import SnapshotDelivery
from schemas.child_keys import child_key
from schemas.topics import ingress_topic


def encoded(settings: Settings, reader: Any, mapper: Any, path: Path) -> list[tuple[bytes, bytes]]:
    """The file's events, encoded, as the raw baseline sends them."""
    codecs = Codecs(registry_for(settings))
    out = []
    for record in reader.records(FileRef(path, "raw", path.name, "raw")):
        try:
            event = mapper(record)
        except (NoEvent, MappingError):
            continue
        out.append((str(child_key(event["child"])).encode(), codecs.event.encode(event)))
    return out


def raw_produce(settings: Settings, values: list[tuple[bytes, bytes]], batch: int) -> float:
    """Seconds to produce ``values`` in transactions of ``batch``, acks=all."""
    topic = settings.topic(ingress_topic("LOCAL_AUTHORITY"))
    prod = producer(
        settings,
        transactional_id=f"bench-raw-{time.time_ns()}",
        **{"linger.ms": 20, "batch.num.messages": 10000},
    )
    prod.init_transactions(30)
    began = time.perf_counter()
    for start in range(0, len(values), batch):
        prod.begin_transaction()
        for key, value in values[start : start + batch]:
            while True:
                try:
                    prod.produce(topic, value, key)
                    break
                except BufferError:
                    prod.poll(0.05)
        prod.commit_transaction(60)
    return time.perf_counter() - began


def connector(settings: Settings, name: str, reader: Any, mapper: Any, path: Path) -> tuple[float, Any]:
    """Seconds for the LA connector (snapshot diffing included) over one file, and its summary."""
    store = CheckpointStore(settings.state_dir / "connectors" / name)
    store.lock()
    snapshot = SnapshotStore(store.root)
    delivery = SnapshotDelivery(TransactionalDelivery(settings, "local_authority", name), snapshot)
    reader, mapper = snapshot_parts("local_authority", reader, mapper, snapshot)  # as a run has them
    try:
        runner = FileConnector(
            name,
            reader,
            mapper,
            delivery,
            store,
            batch_size=5000,
            progress=Progress(Counter(), interactive=False, interval_s=3600),
        )
        began = time.perf_counter()
        summary = runner.run_batch(path, threading.Event())
        return time.perf_counter() - began, summary
    finally:
        delivery.close()
        store.unlock()


def episodes(n: int, rng: random.Random) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    heads, rows = [], []
    for c in range(n // 2):
        child = f"L{c:06d}"
        heads.append({"CHILD": child, "SEX": "1", "DOB": "01/02/2012", "UPN": "UN2"})
        start = 1 + rng.randrange(27)
        rows.append(
            {
                "CHILD": child,
                "DECOM": f"{start:02d}/04/2023",
                "RNE": "S",
                "LS": "C2",
                "CIN": "N1",
                "PLACE": "U1",
                "DEC": f"{start:02d}/06/2023",
                "REC": "X1",
            }
        )
        rows.append(
            {
                "CHILD": child,
                "DECOM": f"{start:02d}/06/2023",
                "RNE": "P",
                "LS": "C2",
                "CIN": "N1",
                "PLACE": "U3",
                "DEC": "15/01/2024" if c % 3 == 0 else "",
                "REC": "E11" if c % 3 == 0 else "",
            }
        )
    return heads, rows


def report(label: str, units: str, count: int, seconds: float, raw_events: int, raw_s: float) -> None:
    print(
        f"{label}: {count / seconds:>9,.0f} {units}/s ({raw_events / seconds:,.0f} events/s); "
        f"raw transactional produce of the same events: {raw_events / raw_s:,.0f} events/s "
        f"(connector at {100 * raw_s / seconds:.0f}% of raw)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--children", type=int, default=20_000, help="children in the CIN census return")
    parser.add_argument("--episodes", type=int, default=40_000, help="rows in the SSDA903 episodes table")
    parser.add_argument("--requests", type=int, default=3_000, help="webhook requests")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent webhook senders")
    parser.add_argument("--no-webhook", action="store_true", help="skip (c), the schools' webhook")
    parser.add_argument("--webhook-only", action="store_true", help="only (c), the schools' webhook")
    parser.add_argument(
        "--client",
        choices=("lean", "httpx"),
        default="lean",
        help="(c)'s senders: one keep-alive connection each writing ready-made requests (measures the "
        "server), or httpx (measures httpx too)",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="(c) first with the webhook of this source tree (`git worktree add --detach DIR main`)",
    )
    parser.add_argument(
        "--profile-webhook", metavar="FILE", help="run the webhook under cProfile, its statistics to FILE"
    )
    args = parser.parse_args()
    with bench_kafka() as settings:
        if args.webhook_only:
            webhooks(settings, args)
            return
        work = settings.state_dir / "files"
        work.mkdir()
        cin = la_syn.write_cin(work / "cin.xml", la_syn.cin_children(args.children, random.Random(1)))
        mapper = LaMapper(LaProfile(), "cin-census")
        values = encoded(settings, CinCensusReader(), mapper, cin)
        raw_s = raw_produce(settings, values, 5000)
        seconds, summary = connector(settings, "bench-cin", CinCensusReader(), mapper, cin)
        assert summary.counts["published"] == len(values), summary.line()
        report(
            f"(a) CIN census, {args.children:,} children",
            "children",
            args.children,
            seconds,
            len(values),
            raw_s,
        )
        restated = la_syn.write_cin(
            work / "cin-restated.xml", la_syn.cin_children(args.children, random.Random(1))
        )
        with restated.open("a", encoding="utf-8") as fh:
            fh.write("<!-- next month's return: the same facts, so a new file identity -->\n")
        again, summary = connector(settings, "bench-cin", CinCensusReader(), mapper, restated)
        print(
            f"    next return, nothing changed: {args.children / again:,.0f} children/s, "
            f"{summary.counts['published']} published, {summary.counts['no_event']} unchanged"
        )

        folder = work / "903"
        folder.mkdir()
        heads, rows = episodes(args.episodes, random.Random(2))
        la_syn.write_csv(folder / "header.csv", HEADER_COLUMNS, heads)
        table = la_syn.write_csv(folder / "episodes.csv", EPISODE_COLUMNS, rows)
        mapper = LaMapper(LaProfile(la_code="202"), "ssda903")
        values = encoded(settings, Ssda903Reader("202"), mapper, table)
        raw_s = raw_produce(settings, values, 5000)
        seconds, summary = connector(settings, "bench-903", Ssda903Reader("202"), mapper, table)
        assert summary.counts["published"] == len(values), summary.line()
        report(f"(b) SSDA903, {len(rows):,} episode rows", "rows", len(rows), seconds, len(values), raw_s)

        dirty_children = list(la_syn.cin_children(args.children, random.Random(3)))
        for kid in dirty_children[::10]:  # one child in ten with a wrong UPN check letter
            kid.upn = ("B" if kid.upn[0] != "B" else "C") + kid.upn[1:]
        dirty = la_syn.write_cin(work / "cin-dirty.xml", dirty_children)
        mapper = LaMapper(LaProfile(), "cin-census")
        values = encoded(settings, CinCensusReader(), mapper, dirty)
        raw_s = raw_produce(settings, values, 5000)
        seconds, summary = connector(settings, "bench-cin-dirty", CinCensusReader(), mapper, dirty)
        assert summary.counts["published"] == len(values), summary.line()
        report(
            f"(a') CIN census, {args.children:,} children, 1 in 10 with a bad UPN (withheld, reported)",
            "children",
            args.children,
            seconds,
            len(values),
            raw_s,
        )
        print(f"    {summary.counts['withheld']} events published with a data-quality finding")

        if not args.no_webhook:
            webhooks(settings, args)


if __name__ == "__main__":
    main()
