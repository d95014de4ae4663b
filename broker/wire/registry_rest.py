"""A read-only Confluent-compatible REST face for the embedded schema registry.

Kafka UI, kcat (``-s value=avro -r URL``), ksqlDB and confluent-kafka's own
``AvroDeserializer`` decode a topic by asking a registry for the id in each message's
framing. The embedded registry keeps its registrations in Kafka (``sg.schemas.v1``); this
app answers the reads of Confluent's Schema Registry API from them, so standard tools need
no other server. It never writes: registering, deleting and changing compatibility are
answered 405 (sgb's writers register their own schemas, content-addressed).

Subjects are sgb's: one per record, named by the record's full name (Confluent's
``RecordNameStrategy``), not Confluent's default ``TopicNameStrategy`` (``<topic>-value``). A
partner that configures its own serializer must set ``value.subject.name.strategy`` to
``RecordNameStrategy``; a reader needs nothing, since messages carry the schema id.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.exceptions import SchemaRegistryError
from broker.wire.registry import EmbeddedRegistry, content_id

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status, media_type=MEDIA_TYPE)


def _json(body: Any) -> JSONResponse:
    return JSONResponse(body, media_type=MEDIA_TYPE)


class RegistryApi:
    """The routes over one :class:`EmbeddedRegistry` (read only).

    Args:
        registry: the embedded registry whose registrations are served.
        compatibility: the compatibility level reported at ``/config`` (``sgb schemas check``
            is what enforces it, before a schema is released).
    """

    def __init__(self, registry: EmbeddedRegistry, compatibility: str = "BACKWARD") -> None:
        self.registry = registry
        self.compatibility = compatibility
        anything = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        self.app = Starlette(
            routes=[
                Route("/", self.root, methods=["GET"]),
                Route("/schemas/types", self.types, methods=["GET"]),
                Route("/schemas/ids/{id:int}", self.by_id, methods=["GET"]),
                Route("/schemas/ids/{id:int}/schema", self.raw_by_id, methods=["GET"]),
                Route("/schemas/ids/{id:int}/versions", self.versions_of_id, methods=["GET"]),
                Route("/subjects", self.subjects, methods=["GET"]),
                Route("/subjects/{subject}", self.lookup, methods=["POST"]),
                Route("/subjects/{subject}/versions", self.versions, methods=["GET"]),
                Route("/subjects/{subject}/versions/{version}", self.version, methods=["GET"]),
                Route("/subjects/{subject}/versions/{version}/schema", self.raw_version, methods=["GET"]),
                Route("/config", self.config, methods=["GET"]),
                Route("/config/{subject}", self.config, methods=["GET"]),
                Route("/{path:path}", self.elsewhere, methods=anything),
            ]
        )

    async def _subjects(self) -> dict[str, list[int]]:
        return await asyncio.to_thread(self.registry.subjects)

    async def _schema(self, schema_id: int) -> dict[str, Any] | None:
        try:
            return await asyncio.to_thread(self.registry.schema, schema_id)
        except SchemaRegistryError:
            return None

    async def root(self, request: Request) -> Response:
        return _json({})

    async def types(self, request: Request) -> Response:
        return _json(["AVRO"])

    async def by_id(self, request: Request) -> Response:
        schema_id = int(request.path_params["id"])
        schema = await self._schema(schema_id)
        if schema is None:
            return _error(404, 40403, f"Schema {schema_id} not found")
        return _json({"schema": json.dumps(schema)})

    async def raw_by_id(self, request: Request) -> Response:
        schema = await self._schema(int(request.path_params["id"]))
        if schema is None:
            return _error(404, 40403, f"Schema {request.path_params['id']} not found")
        return _json(schema)

    async def versions_of_id(self, request: Request) -> Response:
        schema_id = int(request.path_params["id"])
        found = [
            {"subject": subject, "version": ids.index(schema_id) + 1}
            for subject, ids in (await self._subjects()).items()
            if schema_id in ids
        ]
        if not found:
            return _error(404, 40403, f"Schema {schema_id} not found")
        return _json(found)

    async def subjects(self, request: Request) -> Response:
        return _json(list(await self._subjects()))

    async def versions(self, request: Request) -> Response:
        ids = (await self._subjects()).get(request.path_params["subject"])
        if ids is None:
            return _error(404, 40401, f"Subject '{request.path_params['subject']}' not found.")
        return _json(list(range(1, len(ids) + 1)))

    async def _registered(self, request: Request) -> dict[str, Any] | Response:
        subject, version = request.path_params["subject"], request.path_params["version"]
        ids = (await self._subjects()).get(subject)
        if ids is None:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        if version in ("latest", "-1"):
            number = len(ids)
        elif version.isdigit() and 1 <= int(version) <= len(ids):
            number = int(version)
        else:
            return _error(404, 40402, f"Version {version} not found.")
        schema_id = ids[number - 1]
        schema = await self._schema(schema_id)
        if schema is None:
            return _error(404, 40403, f"Schema {schema_id} not found")
        return {"subject": subject, "version": number, "id": schema_id, "schema": schema}

    async def version(self, request: Request) -> Response:
        found = await self._registered(request)
        if isinstance(found, Response):
            return found
        return _json({**found, "schema": json.dumps(found["schema"])})

    async def raw_version(self, request: Request) -> Response:
        found = await self._registered(request)
        return found if isinstance(found, Response) else _json(found["schema"])

    async def lookup(self, request: Request) -> Response:
        """Whether a schema is registered under a subject (a read, though it is a POST)."""
        subject = request.path_params["subject"]
        try:
            body = json.loads(await request.body())
            schema_id = content_id(json.loads(body["schema"]))
        except (ValueError, KeyError, TypeError, RecursionError):
            return _error(422, 42201, 'The body is not a schema: send {"schema": "<Avro schema as JSON>"}.')
        ids = (await self._subjects()).get(subject)
        if ids is None:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        if schema_id not in ids:
            return _error(404, 40403, "Schema not found")
        schema = await self._schema(schema_id)
        return _json(
            {
                "subject": subject,
                "version": ids.index(schema_id) + 1,
                "id": schema_id,
                "schema": json.dumps(schema),
            }
        )

    async def config(self, request: Request) -> Response:
        return _json({"compatibilityLevel": self.compatibility})

    async def elsewhere(self, request: Request) -> Response:
        """A read this face does not serve is not found (clients then fall back, as they do with
        an older registry); any write is refused."""
        if request.method in ("GET", "HEAD"):
            return _error(404, 40400, "Not found in the embedded registry's read-only API.")
        return _error(405, 405, "This registry is read-only: sgb's writers register their own schemas.")


def serve_registry(registry: EmbeddedRegistry, host: str, port: int) -> None:
    """Serve the registry's REST face on ``host:port`` under uvicorn until SIGTERM or Ctrl-C."""
    import uvicorn

    config = uvicorn.Config(
        RegistryApi(registry).app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        log_config=None,
    )
    uvicorn.Server(config).run()
