"""Structured logging, configured once: JSON lines off a terminal, readable on one.

Log lines carry event ids and counts, never a child's name, NHS number, address or free
text. The processor below drops any key that is not on the allow-list of structural
fields, so a careless ``log.info("x", child=...)`` cannot leak personal data.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from broker.tracing import add_trace_id

# Keys that may appear in a log line. Values of other keys are replaced by "[dropped]".
ALLOWED_KEYS = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "logger",
        "event_id",
        "event_type",
        "audience",
        "organisation",
        "outcome",
        "reason",
        "rule",
        "topic",
        "partition",
        "offset",
        "count",
        "counts",
        "events",
        "delivered",
        "withheld",
        "withheld_fields",  # schema paths (child.upn), never values
        "dead_lettered",
        "records",
        "errors",
        "elapsed_s",
        "rate",
        "lag",
        "group",
        "component",
        "agency",
        "policy_version",
        "pid",
        "port",
        "bootstrap",
        "state_dir",
        "path",
        "version",
        "exc_type",
        "attempt",
        "partitions",
        "transactional_id",
        "sink",
        "position",
        "source",
        "status",
        "seconds",
        "schema_id",
        "subject",
        "topics",
        "created",
        "altered",
        "unchanged",
        "action",
        # hubs, the inbox page and operator commands (structural values only)
        "written",
        "duplicates",
        "replayed",
        "skipped",
        "backoff_s",
        "http_status",
        "host",
        "call",  # the name of a Kafka client call (broker.transactions.bounded)
        # field encryption: a keyed hash of a child's key, never the key itself
        "child_ref",
        # credentials (the principal's name and the kind of credential, never the secret)
        "principal",
        "kind",
        # provenance (broker/security/provenance.py): who signed, with which key id
        "signer",
        "key_id",
        "active",
        # tracing (broker/tracing.py): the trace a line was written in, when SGB_TRACING is on
        "trace_id",
    }
)


class DropUnknownKeys:
    """Replace the value of any key not on the allow-list, so personal data cannot slip in."""

    __slots__ = ("allowed",)

    def __init__(self, allowed: frozenset[str] = ALLOWED_KEYS) -> None:
        self.allowed = allowed

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            if key not in self.allowed and not key.startswith("_"):
                event_dict[key] = "[dropped]"
        return event_dict


_configured = False


class _StandardError:
    """Standard error as it is when a line is written, not when logging was configured (tools
    and test runners swap ``sys.stderr``; a stream bound earlier may be closed by then)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library once; later calls change only the level.

    Args:
        level: minimum level name.
        fmt: ``json``, ``console``, or ``auto`` (console when the stream is a terminal).
        stream: where log lines go; standard error by default (the demo names a file).
    """
    global _configured
    numeric = getattr(logging, level)
    out: Any = stream if stream is not None else _StandardError()
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_trace_id,
            DropUnknownKeys(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str) -> Any:
    """A lazy logger for a component: it uses whatever configuration is current when it logs."""
    if not _configured:
        configure()
    return structlog.get_logger(component=name)
