"""broker.hub.subscriber."""
