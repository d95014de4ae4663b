"""The schools' webhook: safeguarding concerns POSTed as JSON, answered only when safe.

``POST /v1/concerns`` with ``Authorization: Bearer <the school's token>`` and a
:class:`~connectors.education.concern.Concern` as JSON. The answer is:

* ``202`` with the event id, only once Kafka has acknowledged the event (``acks=all``);
* ``401`` for a missing or unknown token; ``400`` for a body that is not JSON;
  ``422`` for a payload that does not validate or map, naming the fields and what is wrong
  with them, never their values (the school's system keeps the record and is told why);
* ``503`` while Kafka is unreachable or did not acknowledge in time: the sender retries.
  Never a 2xx for an event Kafka does not have.

A resend of the same ``concern_id`` by the same school carries the same event id, so a
duplicate after a lost 202 is recognisable downstream. ``GET /openapi.json`` is the
OpenAPI 3.1 document; ``GET /livez`` and ``GET /readyz`` are for probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from confluent_kafka import KafkaException
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker import metrics, tracing
from broker.exceptions import SerdeError, SgbError
from broker.logs import get_logger
from broker.probes import Health, beating
from broker.settings import Settings
from broker.wire.codecs import Codecs
from broker.wire.envelope import IngressEnvelope
from broker.wire.registry import registry_for
from connectors.education.concern import Concern, concern_record, map_concern
from connectors.education.tokens import TokenStore
from connectors.exceptions import MappingError
from connectors.runtime.acked import AckedProducer
from connectors.runtime.delivery import check_topics
from connectors.runtime.records import SourceRecord
from schemas.topics import DLQ_TOPIC, ingress_topic

log = get_logger("connectors.webhook")
#: How the webhook names itself in the metrics.
COMPONENT = "connector:education"
MAX_BODY = 256 * 1024
NOT_READY = "Kafka is not reachable; the concern was not accepted. Send it again later."


def _problem(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": "30"} if status == 503 else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="sgb"'
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors without the input values: where, and what is wrong."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
        for err in exc.errors(include_input=False, include_url=False, include_context=False)
    ]


async def _body_within(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes (by its
    Content-Length or while reading), so an oversized body is never held in memory whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the webhook."""
    schema = Concern.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.pop("$defs", {})
    components["Concern"] = schema
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    components["Error"] = error

    def answer(text: str) -> dict[str, Any]:
        return {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }

    return {
        "openapi": "3.1.0",
        "info": {"title": "sgb schools' safeguarding concern webhook", "version": "1"},
        "paths": {
            "/v1/concerns": {
                "post": {
                    "summary": "Record a safeguarding concern about a pupil",
                    "operationId": "postConcern",
                    "security": [{"schoolToken": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Concern"}}},
                    },
                    "responses": {
                        "202": {
                            "description": "Kafka has the event.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"event_id": {"type": "string", "format": "uuid"}},
                                    }
                                }
                            },
                        },
                        "400": answer("The body is not JSON."),
                        "401": answer("No token, or not a school's token."),
                        "413": answer("The body is larger than 256 KiB."),
                        "422": answer("The concern does not validate; the fields and problems are listed."),
                        "503": answer("Kafka is unavailable; send the concern again later."),
                    },
                }
            }
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"schoolToken": {"type": "http", "scheme": "bearer"}},
        },
    }


class ConcernWebhook:
    """The webhook's state and handlers.

    Args:
        settings: how to reach Kafka.
        tokens: the schools' token hashes.
        name: the connector's name (part of every event id).
        ack_timeout: seconds to wait for Kafka's acknowledgement before answering 503.
        codecs: serdes already registered (otherwise registered when Kafka first answers).
    """

    def __init__(
        self,
        settings: Settings,
        tokens: TokenStore,
        name: str = "education-webhook",
        ack_timeout: float = 10.0,
        codecs: Codecs | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.name = name
        self.ack_timeout = ack_timeout
        self.topic = settings.topic(ingress_topic("EDUCATION"))
        self.codecs = codecs
        self._envelope: IngressEnvelope | None = None
        self.counts: Counter[str] = Counter()
        self._producer: AckedProducer | None = None
        #: Live while the event loop turns; ready once its schemas are registered.
        self.health = Health("webhook")
        self.health.add_check("kafka", lambda: self.codecs is not None)
        metrics.start_connector_series("EDUCATION", COMPONENT)
        self.app = Starlette(
            routes=[
                Route("/v1/concerns", self.post_concern, methods=["POST"]),
                Route("/openapi.json", self.openapi, methods=["GET"]),
                Route("/livez", self.livez, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._producer = AckedProducer(self.settings, asyncio.get_running_loop(), self.ack_timeout)
        preparing = asyncio.create_task(self._prepare() if self.codecs is None else asyncio.sleep(0))
        heart = asyncio.create_task(beating(self.health))
        log.info("webhook started", topic=self.topic, count=len(self.tokens))
        try:
            yield
        finally:
            preparing.cancel()
            heart.cancel()
            unacked = await asyncio.to_thread(self._producer.close, self.ack_timeout)
            log.info("webhook stopped", counts=dict(self.counts), records=unacked)

    async def _prepare(self) -> None:
        while self.codecs is None:
            try:
                self.codecs = await asyncio.to_thread(self._codecs_ready)
                log.info("webhook ready", topic=self.topic)
            except (SgbError, KafkaException) as exc:
                log.warning("kafka not ready; answering 503 meanwhile", reason=str(exc))
                await asyncio.sleep(5)

    def _codecs_ready(self) -> Codecs:
        check_topics(self.settings, [self.topic, self.settings.topic(DLQ_TOPIC)], timeout=5)
        codecs = Codecs(registry_for(self.settings))
        _ = codecs.event
        return codecs

    # -- handlers ------------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def livez(self, request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def readyz(self, request: Request) -> Response:
        if self.codecs is None:
            return _problem(503, NOT_READY)
        return JSONResponse({"status": "ready"})

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def post_concern(self, request: Request) -> Response:
        """Authenticate, validate, map, publish, and answer 202 only once Kafka has the event."""
        self.counts["received"] += 1
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        offered = token.strip() if scheme.lower() == "bearer" else ""
        urn = self.tokens.school(offered) if offered else None
        if urn is None:
            self.counts["unauthorised"] += 1
            if offered:  # a token was sent: say it is not accepted, not that none was sent
                return _problem(401, "The bearer token is not a school's current token for this webhook.")
            return _problem(401, "A school's bearer token is required (Authorization: Bearer <token>).")
        body = await _body_within(request, MAX_BODY)
        if body is None:
            self.counts["rejected"] += 1
            return _problem(413, "The body is larger than 256 KiB.")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            self.counts["rejected"] += 1
            return _problem(400, "The body is not JSON.")
        try:
            concern = Concern.model_validate(payload)
        except ValidationError as exc:
            self.counts["rejected"] += 1
            return _problem(422, "The concern does not validate.", fields=_field_errors(exc))
        record = concern_record(self.name, urn, concern, body)
        event_id = record.event_id
        # The school's own trace, when it sent a W3C traceparent, continues through sgb.
        with tracing.span("map", tracing.context_from(request.headers), {"sgb.event_id": event_id}):
            return await self._publish(record, event_id, urn)

    async def _publish(self, record: SourceRecord, event_id: str, urn: str) -> Response:
        try:
            event = map_concern(record, urn)
        except MappingError as exc:
            self.counts["rejected"] += 1
            return _problem(422, str(exc))
        if self.codecs is None:
            self.counts["unavailable"] += 1
            return _problem(503, NOT_READY)
        if self._envelope is None:
            self._envelope = IngressEnvelope(self.settings, "EDUCATION", serde=self.codecs.event)
        try:
            wire = self._envelope.wrap(event)
        except SerdeError as exc:  # no child key, or not the schema
            self.counts["rejected"] += 1
            return _problem(422, str(exc))
        assert self._producer is not None
        try:
            async with asyncio.timeout(self.ack_timeout + 5):
                await self._producer.send(wire.topic, wire.value, wire.key, wire.headers)
        except (KafkaException, TimeoutError):
            self.counts["unavailable"] += 1
            log.warning("event not acknowledged; answered 503", event_id=event_id, organisation=urn)
            return _problem(503, NOT_READY)
        self.counts["published"] += 1
        metrics.record_connector("EDUCATION", "published")
        log.info("concern published", event_id=event_id, organisation=urn)
        return JSONResponse({"event_id": event_id}, status_code=202)


def serve_webhook(
    settings: Settings,
    host: str,
    port: int,
    tokens: TokenStore,
    *,
    name: str,
    ack_timeout: float,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_ca: str | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Run the webhook under uvicorn until SIGTERM or Ctrl-C. With ``tls_ca``, clients must
    present a certificate signed by that CA (mTLS); with only ``tls_cert``/``tls_key``, TLS.
    ``/metrics``, ``/livez`` and ``/readyz`` are on the webhook's own port, and also on plain
    HTTP at ``metrics_host:metrics_port`` when given (a kubelet or Prometheus has no school's
    client certificate)."""
    import ssl

    import uvicorn

    if tls_ca and not tls_cert:
        raise SgbError("--tls-ca (mTLS) needs --tls-cert and --tls-key for the server too.")
    webhook = ConcernWebhook(settings, tokens, name, ack_timeout)
    config = uvicorn.Config(
        webhook.app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        loop="uvloop",  # both dependencies: asyncio's loop and h11 halve the requests per second
        http="httptools",
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        ssl_ca_certs=tls_ca,
        ssl_cert_reqs=ssl.CERT_REQUIRED if tls_ca else ssl.CERT_NONE,
    )
    with metrics.serving(metrics_port, webhook.health, metrics_host):
        uvicorn.Server(config).run()
