"""Vendor hashing against hashes computed here from literals."""

import base64
import hashlib

from optout.connectors import hashing


def test_meta_and_generic_email_is_sha256_hex_of_trimmed_lowercase():
    assert (
        hashing.email_sha256(" Jane.Doe@Example.com ")
        == hashlib.sha256(b"jane.doe@example.com").hexdigest()
    )


def test_meta_phone_is_digits_with_country_code_without_plus():
    assert hashing.meta_phone_sha256("+14155550123") == hashlib.sha256(b"14155550123").hexdigest()


def test_google_gmail_address_loses_dots_and_tag_before_hashing():
    # Given a gmail.com address with dots and a +tag (Google's formatting guide example)
    # When it is hashed for Google's Data Manager
    # Then the hash is of the address without dots and tag, as Google stores it
    expected = hashlib.sha256(b"cloudysanfrancisco@gmail.com").hexdigest()
    assert hashing.google_email_sha256("Cloudy.SanFrancisco+shopping@gmail.com") == expected


def test_google_googlemail_address_follows_the_same_rule():
    expected = hashlib.sha256(b"janedoe@googlemail.com").hexdigest()
    assert hashing.google_email_sha256("jane.doe+ads@googlemail.com") == expected


def test_google_other_domains_keep_dots_and_tag():
    # Given an address outside gmail.com/googlemail.com (Google's second example)
    # Then only case (and whitespace) change
    expected = hashlib.sha256(b"user.name+nyc@example.com").hexdigest()
    assert hashing.google_email_sha256(" user.name+NYC@Example.com ") == expected


def test_meta_and_generic_email_keep_gmail_dots_and_tag():
    # Meta's rule is trim and lowercase only: Google's gmail rule must not leak into it
    expected = hashlib.sha256(b"jane.doe+ads@gmail.com").hexdigest()
    assert hashing.email_sha256("Jane.Doe+ads@Gmail.com") == expected


def test_google_phone_keeps_the_plus():
    assert (
        hashing.google_phone_sha256("+14155550123") == hashlib.sha256(b"+14155550123").hexdigest()
    )


def test_uid2_email_drops_gmail_dots_and_tag_then_base64_sha256():
    expected = base64.b64encode(hashlib.sha256(b"janedoe@gmail.com").digest()).decode()
    assert hashing.uid2_email_hash("jane.doe+ads@gmail.com") == expected


def test_uid2_keeps_dots_outside_gmail():
    expected = base64.b64encode(hashlib.sha256(b"jane.doe+ads@example.com").digest()).decode()
    assert hashing.uid2_email_hash("jane.doe+ads@example.com") == expected


def test_uid2_phone_is_base64_sha256_of_e164():
    expected = base64.b64encode(hashlib.sha256(b"+14155550123").digest()).decode()
    assert hashing.uid2_phone_hash("+14155550123") == expected
