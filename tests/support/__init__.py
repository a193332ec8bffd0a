"""Test support: load the real handlers, build real-shaped events, read the moto table."""
