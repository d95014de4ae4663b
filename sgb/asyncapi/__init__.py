"""sgb.asyncapi."""
