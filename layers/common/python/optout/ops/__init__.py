"""Compliance operations: the deadline watch, the §7102 ledger, denials, exports, imports."""
