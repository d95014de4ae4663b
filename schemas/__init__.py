"""The wire contract: Avro schemas with their sensitivity tags, and the vocabulary they use.

The ``.avsc`` files under ``avro/`` are the single source of truth for what is on the
wire. One named type per file, named ``<Name>.avsc``; a file refers to other named types
by name, and :func:`load` inlines them so that each top-level schema is self-contained
(what a schema registry stores).
"""

from __future__ import annotations

from schemas.exceptions import SchemaError
from schemas.loader import SCHEMA_DIR, load, load_all_names, parsed

__all__ = ["SCHEMA_DIR", "SchemaError", "load", "load_all_names", "parsed"]
