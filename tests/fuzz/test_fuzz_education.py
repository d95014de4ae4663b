"""The education connector: the Common Transfer File (XML) and the schools' webhook (ASGI).

The webhook is driven in-process through its ASGI app with a stand-in for the acknowledged
producer that records what would have been sent: every bad payload must be answered 4xx
with a reason, never 5xx, and must not reach the producer.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from broker.settings import Settings
from connectors.education import CtfMapper, CtfReader
from connectors.education import synthetic as syn
from connectors.education.tokens import TokenStore
from connectors.education.webhook import MAX_BODY, ConcernWebhook

from .fuzzkit import CODECS, FUZZ, MARKER, check, count, hostile_text, mutated, run_file

FIELDS = [
    "UPN",
    "Surname",
    "Forename",
    "DOB",
    "Year",
    "SessionsPossible",
    "SessionsAuthorised",
    "SessionsUnauthorised",
    "LeavingDate",
    "DateTime",
    "URN",
    "LEA",
    "Estab",
]


def _ctf(workdir: Path, pupils: list[syn.CtfPupil], **kw: Any) -> bytes:
    path = syn.write_ctf(workdir / "seed.xml", pupils, **kw)
    return path.read_bytes()


def _pupils() -> list[syn.CtfPupil]:
    rng = random.Random(31)
    return [
        syn.pupil(rng, 1, authorised=40, unauthorised=20),
        syn.pupil(rng, 2, leaving="2025-06-01"),
        syn.pupil(rng, 3, authorised=200, unauthorised=10),
    ]


@pytest.fixture(scope="module")
def seeds(workdir: Path) -> dict[str, bytes]:
    return {
        "attendance": _ctf(workdir, _pupils()),
        "missing": _ctf(workdir, _pupils(), dest=("MMM", "MMMM")),
    }


def _run(workdir: Path, data: bytes) -> None:
    path = workdir / "ctf.xml"
    path.write_bytes(data)
    check(run_file(CtfReader(), CtfMapper(), path))


@FUZZ
@given(st.sampled_from(["attendance", "missing"]), st.data())
def test_mutated_ctf(workdir: Path, seeds: dict[str, bytes], kind: str, data: st.DataObject) -> None:
    count("education ctf: mutated file")
    _run(workdir, data.draw(mutated(seeds[kind], [b"</Pupil><Pupil>", b"<Header/>", b"]]>", b"&#0;"])))


@FUZZ
@given(st.sampled_from(FIELDS), st.integers(0, 2), hostile_text(), st.booleans())
@example("DateTime", 0, "9999-12-31T10:00:00", False)  # an attendance year ending after year 9999
@example("DateTime", 0, "9999-12-31T10:00:00", True)
@example("SessionsPossible", 0, "9" * 30, False)  # does not fit an Avro int
@example("SessionsAuthorised", 0, "99999999999999999999", False)
def test_ctf_hostile_values(workdir: Path, name: str, which: int, value: str, missing: bool) -> None:
    count("education ctf: hostile value")
    text = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = "".join(c for c in text if c in "\t\n\r" or c >= " ")  # XML 1.0 characters only
    from xml.sax.saxutils import escape

    pupils = _pupils()
    dest = ("MMM", "MMMM") if missing else ("202", "2002")
    base = syn.write_ctf(workdir / "seed-h.xml", pupils, dest=dest).read_text(encoding="utf-8")
    # Replace the which-th occurrence of the element's text (header elements occur once).
    open_tag, close_tag = f"<{name}>", f"</{name}>"
    at = -1
    for _ in range(which + 1):
        nxt = base.find(open_tag, at + 1)
        if nxt < 0:
            break
        at = nxt
    if at < 0:
        return
    end = base.index(close_tag, at)
    _run(workdir, (base[: at + len(open_tag)] + escape(text) + base[end:]).encode("utf-8"))


# -- the webhook ---------------------------------------------------------------------------------


class RecordingProducer:
    """Stands in for the acknowledged producer: records each send and acknowledges it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None, headers: Any = None) -> None:
        self.sent.append((topic, value))


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, RecordingProducer, str]:
    tokens = TokenStore(tmp_path_factory.mktemp("tokens") / "tokens")
    token = tokens.add("100000")
    hook = ConcernWebhook(Settings(), tokens, codecs=CODECS)
    producer = RecordingProducer()
    hook._producer = producer  # type: ignore[assignment]
    client = TestClient(hook.app, raise_server_exceptions=False)  # no lifespan: Kafka is never reached
    return client, producer, token


def _post(
    webhook: tuple[TestClient, RecordingProducer, str],
    body: bytes,
    auth: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any, int]:
    client, producer, token = webhook
    before = len(producer.sent)
    answer = client.post(
        "/v1/concerns",
        content=body,
        headers={
            "Authorization": auth if auth is not None else f"Bearer {token}".encode(),
            "Content-Type": content_type,
        },
    )
    assert answer.status_code < 500, f"{answer.status_code} for a payload"
    return answer.status_code, answer, len(producer.sent) - before


def _refused(status: int, answer: Any, sent: int) -> None:
    assert 400 <= status < 500 and sent == 0
    problem = answer.json()
    assert problem["error"], "a 4xx without a reason"
    assert MARKER not in answer.text, "the answer quotes a value"


VALID = syn.concern_payload(random.Random(32), 1)


def _set(body: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    node = copy
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(node.get(part), dict) else node
    node[path[-1]] = value
    return copy


PATHS = [(k,) for k in VALID] + [("child", k) for k in VALID["child"]] + [("contact", "team"), ("extra",)]
WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    hostile_text(),
    st.lists(hostile_text(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@FUZZ
@given(st.sampled_from(PATHS), WRONG)
@example(("occurred_at",), "9999-12-31T23:59:59-23:59")  # past year 9999 in UTC
@example(("occurred_at",), "0001-01-01T00:00:00+23:59")  # before year 1 in UTC
@example(("child",), {"upn": MARKER})
def test_webhook_wrong_values(
    webhook: tuple[TestClient, RecordingProducer, str], path: tuple[str, ...], value: object
) -> None:
    count("education webhook: wrong values")
    status, answer, sent = _post(webhook, json.dumps(_set(VALID, path, value)).encode())
    if status == 202:
        assert sent == 1
    else:
        _refused(status, answer, sent)


@FUZZ
@given(mutated(json.dumps(VALID).encode(), [b"[" * 100_000, b'"\\ud800"', b"1e999999", b"A" * MAX_BODY]))
@example(b"[" * 100_000)  # nested past the recursion limit
@example(b"A" * (MAX_BODY + 1))
@example(b"\xff\xfe")
@example(b"")
def test_webhook_mutated_bodies(webhook: tuple[TestClient, RecordingProducer, str], body: bytes) -> None:
    count("education webhook: mutated body")
    status, answer, sent = _post(webhook, body)
    if status == 202:
        assert sent == 1
    else:
        _refused(status, answer, sent)


@FUZZ
@given(st.one_of(st.text(max_size=60), st.sampled_from(["Bearer", "Bearer ", "bearer  x", "Basic abc"])))
def test_webhook_bad_tokens(webhook: tuple[TestClient, RecordingProducer, str], auth: str) -> None:
    count("education webhook: bad token")
    token = webhook[2]
    if token in auth:
        return  # a valid token with something around it
    raw = auth.encode("utf-8", "surrogatepass")  # headers are bytes on the wire, whatever they hold
    status, answer, sent = _post(webhook, json.dumps(VALID).encode(), auth=raw)
    assert status == 401 and sent == 0 and answer.json()["error"]


def test_webhook_refuses_an_oversized_body_without_reading_it_all(
    webhook: tuple[TestClient, RecordingProducer, str],
) -> None:
    """A chunked body (no Content-Length) is refused once it passes 256 KiB; a declared
    Content-Length over the limit is refused before the body is read."""
    count("education webhook: oversized body")
    client, producer, token = webhook
    sent_before = len(producer.sent)
    chunks = (b"A" * 65_536 for _ in range(64))  # 4 MiB
    answer = client.post(
        "/v1/concerns",
        content=chunks,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 413 and answer.json()["error"]
    answer = client.post(
        "/v1/concerns",
        content=b"{}",
        headers={"Authorization": f"Bearer {token}", "Content-Length": str(MAX_BODY + 1)},
    )
    assert answer.status_code == 413
    assert len(producer.sent) == sent_before
