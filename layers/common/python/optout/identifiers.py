"""Identifier types, their normalisation, and the keyed hashes used as lookup keys.

Raw identifiers are never table keys: every key is HMAC-SHA256(secret, "type:value") of the
normalised value, so a leaked key reveals nothing without the secret.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

from optout.errors import InvalidInput

IdType = Literal["device_id", "email", "phone", "customer_id"]
ID_TYPES: Final[tuple[IdType, ...]] = get_args(IdType)

DEVICE_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
CUSTOMER_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Pragmatic RFC 5321 subset: dot-atom local part, a dotted domain with a 2+ letter TLD (or an
# internationalised one in its xn-- form).
EMAIL_RE: Final = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{0,58}[a-z0-9])$"
)
MAX_EMAIL_LENGTH: Final = 254
# What a person may type around a number; phonenumbers itself would find one inside any text.
PHONE_RE: Final = re.compile(r"^\+?[0-9(][0-9 ().\-]{3,30}$")
# Trimmed: spaces someone typed or pasted. Tabs, newlines and other control characters are
# refused with the rest of the value, never trimmed away (the README's error table).
TRIM: Final = " \u00a0"
# Where no country is stated (a backend's links, an operator's lookup or export), a number
# without its country code would be read as a US one: another country's number that happens to
# be valid there (a Chinese mobile 131 2345 6789 is a Chicago number) names a stranger.
NO_COUNTRY_CODE: Final = "phone must be E.164 here: + and the country code"
NON_ASCII_LOCAL_PART: Final = (
    "not a valid email address: the part before the @ must be ASCII letters, digits or "
    "punctuation (or give a phone number)"
)


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    """A normalised identifier. `value` is PII for every type but device_id."""

    type: IdType
    value: str

    def __repr__(self) -> str:  # keep values out of tracebacks and logs
        return f"Identifier(type={self.type!r}, value=<redacted>)"


def normalise_email(raw: str) -> str:
    typed = raw.strip(TRIM)
    local, at, domain = typed.rpartition("@")
    if not local.isascii():  # before lower(): the Kelvin sign would fold to an ASCII k
        raise InvalidInput(NON_ASCII_LOCAL_PART, field="email")
    if at and not domain.isascii():
        domain = _a_labels(domain)
    email = f"{local}{at}{domain}".lower()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_RE.fullmatch(email):
        raise InvalidInput("not a valid email address", field="email")
    return email


def _a_labels(domain: str) -> str:
    """An internationalised domain in its ASCII (xn--) form, as DNS and mail servers know it
    (UTS #46 mapping, IDNA 2008): `bücher.example` and `xn--bcher-kva.example` are one
    address, so one identifier."""
    # Imported on the first such domain: nearly every address is ASCII.
    import idna  # noqa: PLC0415

    try:
        return str(idna.encode(domain, uts46=True).decode("ascii"))
    except (idna.IDNAError, UnicodeError):
        raise InvalidInput("not a valid email address", field="email") from None


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """E.164, e.g. +14155550123. A number without a country code is read in `default_region`
    (the request's stated or located country); without one, it is refused."""
    # Imported on the first phone number: most requests carry none, and its metadata is a
    # good part of a cold start.
    import phonenumbers  # noqa: PLC0415

    typed = raw.strip(TRIM)
    if not PHONE_RE.fullmatch(typed):
        raise InvalidInput("not a valid phone number", field="phone")
    if default_region is None and not typed.startswith("+"):
        raise InvalidInput(NO_COUNTRY_CODE, field="phone")
    try:
        number = phonenumbers.parse(typed, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("not a valid phone number", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("not a valid phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_device_id(raw: str) -> str:
    if not DEVICE_ID_RE.fullmatch(raw):  # not match: `$` allows a trailing newline
        raise InvalidInput("device_id must be 16-64 characters of A-Z a-z 0-9 _ -", "device_id")
    return raw


def normalise_customer_id(raw: str) -> str:
    value = raw.strip(TRIM)
    if not CUSTOMER_ID_RE.fullmatch(value):
        raise InvalidInput(
            "customer_id must be 1-128 characters of A-Z a-z 0-9 . _ : - ", "customer_id"
        )
    return value


def normalise(id_type: IdType, raw: str, default_region: str | None = None) -> Identifier:
    if id_type == "email":
        return Identifier("email", normalise_email(raw))
    if id_type == "phone":
        return Identifier("phone", normalise_phone(raw, default_region))
    if id_type == "device_id":
        return Identifier("device_id", normalise_device_id(raw))
    return Identifier("customer_id", normalise_customer_id(raw))


def lookup_key(secret: bytes, identifier: Identifier) -> str:
    """Keyed hash of a normalised identifier: the only form in which it appears in keys."""
    message = f"{identifier.type}:{identifier.value}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
