"""broker.wire."""
