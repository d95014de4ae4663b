"""sgb.manifests."""
