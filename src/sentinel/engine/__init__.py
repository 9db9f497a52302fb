"""Rule and anomaly engine: rule packs, dense state, vectorised evaluation."""
