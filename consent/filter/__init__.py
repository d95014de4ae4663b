"""consent.filter."""
