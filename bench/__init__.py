"""Benchmarks: AWS calls, latency, cold start and cost per opt-out (`make bench`)."""
