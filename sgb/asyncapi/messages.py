"""The messages of the AsyncAPI document (see ``sgb/asyncapi/document.py``): each
``components.messages`` entry with its Avro payload inlined, its headers (decision,
signing and trace) and its Kafka key binding. ``channels.py`` puts them on channels.
"""

from __future__ import annotations

from typing import Any

from sgb.asyncapi.common import (
    AVRO_CONTENT_TYPE,
    KAFKA_BINDING,
    NAMESPACE,
    _avro_payload,
    _message_binding,
    _ref,
)


def _signing_headers(signer: str) -> dict[str, Any]:
    """The provenance headers (broker/security/provenance.py), present when SGB_PROVENANCE is on."""
    return {
        "sgb.key_id": {
            "type": "string",
            "contentEncoding": "7bit",
            "description": f"ASCII: the id of the Ed25519 key that signed the record ({signer}).",
        },
        "sgb.signature": {
            "type": "string",
            "contentEncoding": "base64",
            "description": "The Ed25519 signature (64 bytes) in standard base64, 88 ASCII characters, "
            "over a domain tag, the logical topic, the key and the exact value bytes. Readers accept "
            "the 64 raw bytes earlier releases wrote, for one release.",
        },
    }


def _trace_headers() -> dict[str, Any]:
    """The W3C trace context (broker/tracing.py), present when SGB_TRACING is on."""
    return {
        "traceparent": {
            "type": "string",
            "contentEncoding": "7bit",
            "description": "ASCII, W3C Trace Context: 00-<trace id>-<parent span id>-<flags>, the span "
            "that produced the record; present when the producer traces (SGB_TRACING).",
        },
        "tracestate": {
            "type": "string",
            "contentEncoding": "7bit",
            "description": "ASCII, W3C Trace Context vendor state, when the trace carries any.",
        },
    }


def _messages() -> dict[str, Any]:
    ingress_headers = {
        "type": "object",
        "description": "Kafka record headers set by the connector. With provenance on (SGB_PROVENANCE) "
        "both are required: the filter dead-letters an unsigned or badly signed event.",
        "properties": {**_signing_headers("the agency's connector"), **_trace_headers()},
    }
    delivered_headers = {
        "type": "object",
        "description": "Kafka record headers (UTF-8 strings unless said otherwise) set by the filter on "
        "every delivery: the event and the decision behind it, so a hub can show why it received "
        "the event without reading the audit topic.",
        "required": ["sgb.event_id", "sgb.policy_version", "sgb.rule", "sgb.reason"],
        "properties": {
            "sgb.rule": {
                "type": "string",
                "contentEncoding": "8bit",
                "description": "UTF-8: the id of the policy rule that granted the delivery.",
            },
            "sgb.reason": {
                "type": "string",
                "contentEncoding": "8bit",
                "description": "UTF-8: the decision's reason (`granted` for a delivery).",
            },
            "sgb.lawful_basis": {
                "type": "string",
                "contentEncoding": "8bit",
                "description": "UTF-8: the lawful basis the rule names; absent when it names none.",
            },
            "sgb.consent_state": {
                "type": "string",
                "contentEncoding": "8bit",
                "description": "UTF-8: the child's consent state the decision used; absent when consent "
                "played no part.",
            },
            **_signing_headers("the filter"),
            **_trace_headers(),
            "sgb.event_id": {
                "type": "string",
                "description": "The event id, the same as the payload's "
                "`event_id` and the matching audit record's key.",
            },
            "sgb.policy_version": {
                "type": "string",
                "description": "The version of the policy that granted "
                "this delivery (as in the audit record).",
            },
        },
    }
    dead_letter_headers = {
        "type": "object",
        "description": "Kafka record headers (UTF-8 strings) so that tools can filter dead letters without "
        "decoding the value. The origin headers are present when known: a Kafka position for "
        "the filter, a source position for a connector.",
        "required": ["sgb.component", "sgb.reason"],
        "properties": {
            "sgb.reason": {
                "type": "string",
                "description": "Why the record could not be processed: one "
                "sentence about what is wrong, never the values involved.",
            },
            "sgb.origin.topic": {
                "type": "string",
                "description": "The topic the failed record was read from.",
            },
            "sgb.origin.partition": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its partition (decimal).",
            },
            "sgb.origin.offset": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its offset (decimal).",
            },
            "sgb.source.name": {
                "type": "string",
                "description": "The connector's source (for example a file name) the record came from.",
            },
            "sgb.source.position": {
                "type": "string",
                "description": "Where in that source (for example a line number).",
            },
            "sgb.component": {
                "type": "string",
                "description": "The component that gave up on the record: `filter`, or the connector's name.",
            },
        },
    }
    return {
        "SafeguardingEvent": {
            "name": "SafeguardingEvent",
            "title": "Safeguarding event (as the agency published it)",
            "summary": "What happened to a child, as an agency's connector recorded it.",
            "description": "The envelope with one details branch per event type. On an ingress topic the "
            "event is complete; it is never read by anyone but the filter.",
            "contentType": AVRO_CONTENT_TYPE,
            "headers": ingress_headers,
            "payload": _avro_payload("SafeguardingEvent"),
            "bindings": _message_binding("ChildKey"),
        },
        "DeliveredEvent": {
            "name": "DeliveredEvent",
            "title": "Safeguarding event (the copy one recipient may see)",
            "summary": "The same record, redacted for one audience and organisation.",
            "description": "The same `SafeguardingEvent` schema: the fields the recipient may not see are "
            "set to null (or emptied) and named in `withheld_fields`; transformed ones "
            "(masked, generalised, pseudonymised) are named in `generalised_fields`. "
            "Structural fields tagged METADATA are always kept.",
            "contentType": AVRO_CONTENT_TYPE,
            "headers": delivered_headers,
            "payload": _avro_payload("SafeguardingEvent"),
            "correlationId": {
                "description": "Links the delivery to its audit record (keyed by event id).",
                "location": "$message.header#/sgb.event_id",
            },
            "bindings": _message_binding("PseudonymisedChildKey"),
        },
        "ConsentRecord": {
            "name": "ConsentRecord",
            "title": "Consent record",
            "summary": "A child's consent for one audience (or ALL) and purpose.",
            "description": "The newest record by `recorded_at` is in force, whatever order records arrive "
            "in.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("ConsentRecord"),
            "bindings": _message_binding("ChildKey"),
        },
        "ChildStatus": {
            "name": "ChildStatus",
            "title": "Child status",
            "summary": "The flags and known organisations the filter holds for one child.",
            "description": "Written by the filter when an event changes a child's flags; read back by every "
            "filter process as a global table.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("ChildStatus"),
            "bindings": _message_binding("ChildKey"),
        },
        "AuditRecord": {
            "name": "AuditRecord",
            "title": "Audit record",
            "summary": "Every decision on one event, one per candidate audience, share or withhold.",
            "description": "Names the fields removed or transformed, never their values. Linked into the hash "
            "chain of the ingress partition the event came from; record_hash, the last field, covers the "
            "record's Avro bytes before it. Audit is data, not logging: this topic is the record of every "
            "decision and is kept.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("AuditRecord"),
            "correlationId": {
                "description": "The event decided on.",
                "location": "$message.payload#/event_id",
            },
            "bindings": _message_binding("EventId"),
        },
        "IdentityLink": {
            "name": "IdentityLink",
            "title": "Identity link",
            "summary": "Where one pair of a child's identifiers stands: linked, a candidate, or unlinked.",
            "description": "Written by the filter on evidence (an agency's cross-reference, a demographic match "
            "above the policy's threshold) and by an operator (`sgb identity link|unlink`); read by every filter "
            "process as a global table. Carries identifiers and the names of fields that agreed, never demographics.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("IdentityLink"),
            "bindings": _message_binding("LinkId"),
        },
        "ShareRecord": {
            "name": "ShareRecord",
            "title": "Share ledger entry",
            "summary": "Who received one decided event (metadata only), and what they were told of its corrections.",
            "description": "Written by the filter in the transaction of the deliveries it describes; read back by "
            "every filter process, so a correction reaches exactly the original's recipients and an event id "
            "is decided once.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("ShareRecord"),
            "bindings": _message_binding("EventId"),
        },
        "AuditDecision": {
            "name": "AuditDecision",
            "title": "Audit decision (older form)",
            "summary": "One decision for one (event, candidate audience) pair, share or withhold.",
            "description": "What the filter wrote before AuditRecord; no longer written, still on the topic "
            "and read (the schema id in the framing says which form a message is). Names the fields removed "
            "or transformed, never their values.",
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload("AuditDecision"),
            "correlationId": {
                "description": "The event decided on.",
                "location": "$message.payload#/event_id",
            },
            "bindings": _message_binding("EventId"),
        },
        "DeadLetter": {
            "name": "DeadLetter",
            "title": "Dead letter",
            "summary": "A record that could not be processed, with its reason and origin.",
            "description": "Nothing is silently dropped: the original bytes are kept so that the record can "
            "be re-submitted after a fix.",
            "contentType": AVRO_CONTENT_TYPE,
            "headers": dead_letter_headers,
            "payload": _avro_payload("DeadLetter"),
            "bindings": _message_binding("DeadLetterKey"),
        },
        "ReplayMarker": {
            "name": "ReplayMarker",
            "title": "Dead letter replayed",
            "summary": "Marks one dead letter as re-sent by `sgb dlq replay`, so it is never re-sent twice.",
            "description": "Written in the same transaction as the re-sent record. Keyed by the dead "
            "letter's `partition:offset` on `sg.dlq.v1`; compacted.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "required": ["replayed_at", "dead_letter", "sha256"],
                "properties": {
                    "replayed_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "When the dead letter was re-sent.",
                    },
                    "origin": {"type": ["string", "null"], "description": "The topic it was re-sent to."},
                    "dead_letter": {
                        "type": "string",
                        "description": "Its position: `sg.dlq.v1[partition]@offset`.",
                    },
                    "sha256": {"type": "string", "description": "SHA-256 of the re-sent payload."},
                },
            },
            "bindings": {
                "kafka": {
                    "key": _ref("components", "schemas", "DeadLetterPosition"),
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        },
        "ConnectorCheckpoint": {
            "name": "ConnectorCheckpoint",
            "title": "File connector checkpoint",
            "summary": "How far a file connector has published one file, committed with the batch it covers.",
            "description": "Written in the same transaction as the batch's events and dead letters, and read "
            "back when the connector starts, so a connector killed between Kafka's commit and its local "
            "checkpoint resumes without sending the batch again. Positions only, never content. Keyed "
            "`<connector name>/<file id>`; compacted.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "required": ["file", "done", "complete"],
                "properties": {
                    "file": {
                        "type": "string",
                        "description": "The file's path relative to the source folder.",
                    },
                    "done": {
                        "type": "integer",
                        "description": "Records of the file done (published, dead-lettered or not used).",
                    },
                    "complete": {"type": "boolean", "description": "Whether the whole file is done."},
                },
            },
            "bindings": {
                "kafka": {
                    "key": _ref("components", "schemas", "CheckpointKey"),
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        },
        "SchemaRegistration": {
            "name": "SchemaRegistration",
            "title": "Schema registration (embedded registry)",
            "summary": "One schema registered under one subject, as JSON.",
            "description": "The embedded registry's storage. A schema's id is derived from its content (the "
            "first 31 bits of SHA-256 of its canonical JSON), so every process agrees on it "
            "without coordination; a reader that meets an unknown id reads this topic from "
            "the start. Not used when a Confluent-compatible registry is configured.",
            "contentType": "application/json",
            "payload": {
                "type": "object",
                "required": ["subject", "id", "schema"],
                "properties": {
                    "subject": {
                        "type": "string",
                        "description": f"The record's full name, e.g. `{NAMESPACE}.SafeguardingEvent`.",
                    },
                    "id": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 2147483647,
                        "description": "The schema id written in the Confluent framing.",
                    },
                    "schema": {"type": "object", "description": "The self-contained Avro schema."},
                },
            },
            "bindings": {
                "kafka": {
                    "key": _ref("components", "schemas", "RegistrationKey"),
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        },
    }
