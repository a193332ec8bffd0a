"""The embedded local stack: moto, pollers, an HTTP front and sandbox downstream systems."""
