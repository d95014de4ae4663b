"""sgb.demo."""
