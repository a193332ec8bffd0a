"""Data access: the only code that talks to DynamoDB. One table, single-table design (keys.py)."""
