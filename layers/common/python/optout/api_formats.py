"""The public contract's formats, in a module without pydantic: the models (api_models.py)
use them, and so do the code paths that must not import pydantic at a cold start (the hot
routes' body checks, the error envelope)."""

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
JURISDICTION_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"
REQUEST_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# Operators only: a request id, or the id jobs made under a request of their own carry (a
# backfill step's, the resolver's rederived ones): `<request id>~<12 hex>`
JOB_REQUEST_ID_PATTERN = (
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(~[0-9a-f]{12})?$"
)
# What a field with a pattern expects, in words: a refusal says this, never the pattern.
EXPECTED_FORMATS: dict[str, str] = {
    "device_id": "must be 16-64 characters of A-Z, a-z, 0-9, _ and - (the banner's "
    "optout_device_id)",
    "jurisdiction": "must be an ISO 3166-2 code in capital letters, such as US-CA, or a "
    "country code such as US, naming a real place (for the US a state, DC or an inhabited "
    "territory)",
    "request_id": "must be a request id as the API returned it: a lowercase UUID such as "
    "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f",
    "hold_id": "must be a hold id as GET /v1/admin/holds lists it: a request id, a dot and "
    "three digits",
    "from": "must be a day such as 2026-11-01 (a UTC day, without a time)",
    "to": "must be a day such as 2026-11-30 (a UTC day, without a time)",
    "system": "must be a system name as configured: a lowercase letter, then up to 39 "
    "lowercase letters, digits or _",
}
