"""The resolver: identity graph, effective state and fan-out of jobs, per captured event."""
