"""sgb.ops."""
