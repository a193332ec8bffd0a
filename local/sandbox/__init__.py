"""Sandbox downstream systems: each answers like its vendor and records what it received."""

from local.sandbox.base import Sandbox, SandboxRequest, SandboxResponse, build_sandbox

__all__ = ["Sandbox", "SandboxRequest", "SandboxResponse", "build_sandbox"]
