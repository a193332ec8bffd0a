"""Vendor-specific normalisation and hashing of identifiers that are already normalised.

Input values come from optout.identifiers (emails trimmed+lowercased, phones E.164).
"""

import base64
import hashlib

GMAIL_DOMAINS = frozenset({"gmail.com"})  # UID2's rule names gmail.com only
# Google's Data Manager formatting guide names both (docs/vendors.md, "Google").
GOOGLE_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def sha256_b64(value: str) -> str:
    return base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()


def email_sha256(email: str) -> str:
    """Meta and the generic webhook: SHA-256 hex of the trimmed, lowercased address."""
    return sha256_hex(email.strip().lower())


def google_email(email: str) -> str:
    """Google Data Manager: lowercase, no whitespace; for gmail.com and googlemail.com also no
    dots and no '+tag' in the local part. Google matches on this form: a hash of any other
    names an address Google never stored, and a removal for it removes no one."""
    local, _, domain = "".join(email.split()).lower().partition("@")
    if domain in GOOGLE_GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
    return f"{local}@{domain}"


def google_matchable(email: str) -> bool:
    """Whether Google's form keeps a local part: `+tag@gmail.com` has none once its tag is
    gone, and Google's own formatter (google-ads-datamanager-util) refuses it. Its hash would be
    of `@gmail.com`, one value for every such address, naming no Google account."""
    return not google_email(email).startswith("@")


def google_email_sha256(email: str) -> str:
    return sha256_hex(google_email(email))


def meta_phone_sha256(e164: str) -> str:
    """Meta: digits only, country code included, no '+'."""
    return sha256_hex("".join(ch for ch in e164 if ch.isdigit()))


def google_phone_sha256(e164: str) -> str:
    """Google Customer Match: E.164 with the leading '+'."""
    return sha256_hex(e164)


def uid2_email(email: str) -> str:
    """UID2 email normalisation: lowercase; for gmail.com drop dots and any '+tag' locally."""
    local, _, domain = email.strip().lower().partition("@")
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
    return f"{local}@{domain}"


def uid2_matchable(email: str) -> bool:
    """Whether UID2's form keeps a local part (uid2-client's normalize_email_string answers
    None for `+tag@gmail.com`): the operator would map the hash of `@gmail.com` to one raw
    UID2 shared by every such address, which no publisher could have generated."""
    return not uid2_email(email).startswith("@")


def uid2_phone_matchable(e164: str) -> bool:
    """Whether UID2 takes the number: 10 to 15 digits (the operator's and uid2-client's
    isPhoneNumberNormalized). A valid shorter one (Faroe, Niue, some Swedish numbers) has no
    UID2: the operator refuses to generate one from it, so the hash we sent named nobody."""
    return 10 <= len(e164) - 1 <= 15


def uid2_email_hash(email: str) -> str:
    return sha256_b64(uid2_email(email))


def uid2_phone_hash(e164: str) -> str:
    return sha256_b64(e164)
