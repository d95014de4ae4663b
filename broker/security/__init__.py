"""broker.security."""
