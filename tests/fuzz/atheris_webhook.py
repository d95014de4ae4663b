"""Coverage-guided fuzzing (atheris) of the schools' webhook, for ``make fuzz``; not collected by pytest.

    python tests/fuzz/atheris_webhook.py -max_total_time=60

Each input is POSTed as the body of a concern, with a valid token, through the ASGI app in
process (no lifespan, so Kafka is never reached; a stand-in records what would be sent). A 5xx,
a 4xx without a reason, a reason quoting the planted marker, or a send for a refused body stops
the run with the input saved (crash-*).
"""

# ruff: noqa: E402  (the imports follow the sys.path set-up)
from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

import atheris

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1]), str(Path(__file__).parents[2])]

with atheris.instrument_imports(include=["connectors", "broker", "schemas", "fuzzkit"]):
    from fuzzkit import CODECS, MARKER

    from broker.settings import Settings
    from connectors.education import synthetic as syn
    from connectors.education.tokens import TokenStore
    from connectors.education.webhook import ConcernWebhook
from starlette.testclient import TestClient
from test_fuzz_education import RecordingProducer


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="sgb-atheris-webhook-"))
    tokens = TokenStore(work / "tokens")
    token = tokens.add("100000")
    hook = ConcernWebhook(Settings(), tokens, codecs=CODECS)
    producer = RecordingProducer()
    hook._producer = producer  # type: ignore[assignment]
    client = TestClient(hook.app, raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def one_input(data: bytes) -> None:
        before = len(producer.sent)
        answer = client.post("/v1/concerns", content=data, headers=headers)
        sent = len(producer.sent) - before
        assert answer.status_code < 500, answer.status_code
        if answer.status_code == 202:
            assert sent == 1
            return
        assert 400 <= answer.status_code < 500 and sent == 0
        assert answer.json()["error"] and MARKER not in answer.text

    if not any(not arg.startswith("-") for arg in sys.argv[1:]):
        corpus = work / "corpus"
        corpus.mkdir()
        body = syn.concern_payload(random.Random(1), 1)
        body["description"] = MARKER
        (corpus / "concern").write_bytes(json.dumps(body).encode())
        sys.argv.append(str(corpus))
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
