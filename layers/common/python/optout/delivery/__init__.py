"""Delivery of jobs to downstream systems: the worker's domain logic (no Lambda types here)."""
