"""Identity-token verification rules that need no AWS: rotation, claims, normalisation."""

from datetime import UTC, datetime, timedelta

import pytest

from optout.identity_token import InvalidToken, StaleToken, TokenVerifier, mint
from optout.settings import Settings
from optout.token_keys import (
    MissingTokenKey,
    TokenSecretUnusable,
    load_token_keys,
    parse_token_keys,
)
from tests.support.tokens import token_for

ROTATED = parse_token_keys({"kid": "k2", "key": "new-key-" + "n" * 40,
                            "previous": {"kid": "k1", "key": "old-key-" + "o" * 40}})  # fmt: skip


def verifier() -> TokenVerifier:
    return TokenVerifier(ROTATED, "optout-bridge", 600)


def test_during_a_rotation_tokens_of_the_current_and_the_previous_key_verify() -> None:
    new = token_for(email="a@example.com", kid="k2", key="new-key-" + "n" * 40)
    old = token_for(email="a@example.com", kid="k1", key="old-key-" + "o" * 40)
    assert verifier().verify(new, datetime.now(UTC)).kid == "k2"
    assert verifier().verify(old, datetime.now(UTC)).kid == "k1"


def test_a_token_signed_with_the_previous_key_but_naming_the_current_kid_is_refused() -> None:
    crossed = token_for(email="a@example.com", kid="k2", key="old-key-" + "o" * 40)
    with pytest.raises(InvalidToken, match="signature"):
        verifier().verify(crossed, datetime.now(UTC))


def test_bound_identifiers_are_normalised_like_typed_ones() -> None:
    now = datetime.now(UTC)
    token = mint(ROTATED, "optout-bridge",
                 {"email": " Pat@Example.COM ", "phone": "+1 415 555 0132"}, now)  # fmt: skip
    identity = verifier().verify(token, now)
    assert [(i.type, i.value) for i in identity.identifiers] == [
        ("email", "pat@example.com"), ("phone", "+14155550132"),
    ]  # fmt: skip
    assert "pat" not in repr(identity)


@pytest.mark.parametrize("phone", ["(240) 312-3852", "240 312 3852", "0 24 0312 3852"])
def test_a_phone_claim_without_its_country_code_is_refused(phone: str) -> None:
    # A national number would be read in the region of the caller's unsigned jurisdiction
    now = datetime.now(UTC)
    token = mint(ROTATED, "optout-bridge", {"phone": phone}, now)
    with pytest.raises(InvalidToken, match=r"E\.164"):
        verifier().verify(token, now)


def test_without_a_secret_name_only_local_mode_gets_the_development_key() -> None:
    assert (
        load_token_keys(Settings(table_name="t", optout_local_mode=True)).current_kid == "local-dev"
    )
    with pytest.raises(MissingTokenKey):
        load_token_keys(Settings(table_name="t"))


@pytest.mark.parametrize(
    ("secret", "names"),
    [
        ({"kid": "k2", "secret": "s" * 40}, "has no key"),
        ({"key": "s" * 40}, "has no kid"),
        ({"kid": " ", "key": "s" * 40}, "has no kid"),
        ({"kid": "k2", "key": "s" * 40, "previous": {"kid": "k1"}}, "previous has no key"),
        ({"kid": "k2", "key": "s" * 40, "previous": ["k1"]}, "previous is not a JSON object"),
        ("k2", "is not a JSON object"),
    ],
)
def test_a_token_secret_of_the_wrong_shape_is_named_without_its_values(
    secret: object, names: str
) -> None:
    # A bare KeyError stopped every public request (review s18 operator M4)
    with pytest.raises(TokenSecretUnusable, match=names) as refused:
        parse_token_keys(secret)
    assert "s" * 40 not in str(refused.value)


def test_a_tokens_times_are_judged_at_the_now_given_not_the_wall_clock() -> None:
    # review s18 time T7: PyJWT judged exp (and iat) by the wall clock, `now` only iat
    real = datetime.now(UTC)
    # issued an hour ago for 5 minutes: expired now, valid 10 s after it was issued
    old = mint(ROTATED, "optout-bridge", {"email": "a@example.com"}, real - timedelta(hours=1), 300)
    assert verifier().verify(old, real - timedelta(hours=1) + timedelta(seconds=10)).kid == "k2"
    with pytest.raises(StaleToken, match="expired"):
        verifier().verify(old, real)
    # valid now, but expired two hours on
    fresh = mint(ROTATED, "optout-bridge", {"email": "a@example.com"}, real, 300)
    with pytest.raises(StaleToken, match="expired"):
        verifier().verify(fresh, real + timedelta(hours=2))
    # and issued in the future of the `now` given
    with pytest.raises(InvalidToken, match="future"):
        verifier().verify(fresh, real - timedelta(minutes=5))
