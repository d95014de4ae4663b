"""broker.cluster.nodes."""
