"""sgb.simulate."""
