"""Identity-token verification rules that need no AWS: rotation, claims, normalisation."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from optout.identity_token import (
    InvalidToken,
    StaleToken,
    TokenUnverifiable,
    TokenVerifier,
    device_sha256,
    mint,
)
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


# -- each refusal as the caller sees it (mutation testing, session 20) ------------------------

NEW_KEY = "new-key-" + "n" * 40
T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # whole seconds: iat is exactly T
IAT = int(T.timestamp())
DEVICE = "dev-token-aaaaaaaaaaaa"
DIGEST = device_sha256(DEVICE)


def signed(claims: dict[str, object], alg: str = "HS256", kid: str = "k2") -> str:
    """A token with exactly these claims (iat/exp/aud added unless given), current key."""
    body = {"aud": "optout-bridge", "iat": IAT, "exp": IAT + 60, "email": "a@example.com"}
    body.update(claims)
    key = NEW_KEY if alg == "HS256" else NEW_KEY * 2
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def refusal(token: str, now: datetime = T) -> InvalidToken:
    with pytest.raises(InvalidToken) as refused:
        verifier().verify(token, now)
    return refused.value


def test_a_token_is_taken_until_30_seconds_after_its_exp_and_stale_from_then() -> None:
    token = signed({"exp": IAT + 60})
    assert verifier().verify(token, T + timedelta(seconds=89, milliseconds=999)).kid == "k2"
    stale = refusal(token, T + timedelta(seconds=90))
    assert isinstance(stale, StaleToken) and "expired" in stale.message


def test_a_token_issued_up_to_30_seconds_ahead_of_now_is_taken_and_no_further() -> None:
    token = signed({})
    assert verifier().verify(token, T - timedelta(seconds=30)).issued_at == IAT
    ahead = refusal(token, T - timedelta(seconds=31))
    assert not isinstance(ahead, StaleToken) and "future" in ahead.message


@pytest.mark.parametrize(
    ("nbf", "taken"), [(IAT + 30, True), (IAT + 31, False), ("soon", False), (True, False)]
)  # JSON's true is no time (review s30 stranger N2), though Python's bool is an int
def test_a_not_before_claim_is_a_number_at_most_30_seconds_ahead(nbf: object, taken: bool) -> None:
    token = signed({"nbf": nbf})
    if taken:
        assert verifier().verify(token, T).kid == "k2"
    else:
        assert "not yet valid" in refusal(token).message


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("definitely.not.a-jwt", "not a JWT"),
        (signed({"aud": "another-site"}), "for another audience"),
        (signed({"aud": None}), "malformed"),
        (signed({"email": "not-an-email"}), "email is not valid"),
        (signed({}, alg="HS512"), "must be signed with HS256"),
        (signed({}, kid="k9"), "unknown key (kid)"),
        (signed({"iat": IAT + 0.5}), "whole seconds"),
        (signed({"exp": IAT + 60.5}), "whole seconds"),
        (signed({"exp": IAT + 601}), "at most 600 seconds"),
        # a bool is no number (review s30 stranger N2: `iat: true` read as 1 was refused as
        # living too long, `exp: true` as expired)
        (signed({"iat": True}), "whole seconds"),
        (signed({"exp": True}), "whole seconds"),
        (signed({"email": 12345}), "email must be a string"),
        (signed({"email": None}), "binds no email, phone or customer_id"),
        (signed({"device_id": "short"}), "device_id is not valid"),
        (signed({"device_id": 1234567890123456}), "device_id is not valid"),
        # padded, hex, the standard alphabet, stray low bits in the last character, a number
        (signed({"device_sha256": DIGEST + "="}), "device_sha256 is not valid"),
        (signed({"device_sha256": hashlib.sha256(DEVICE.encode()).hexdigest()}), "not valid"),
        (signed({"device_sha256": DIGEST.replace("_", "/")}), "device_sha256 is not valid"),
        (signed({"device_sha256": DIGEST[:42] + "B"}), "device_sha256 is not valid"),
        (signed({"device_sha256": 12345}), "device_sha256 is not valid"),
        (
            signed({"device_sha256": device_sha256("dev-other-bbbbbbbbbbbb"), "device_id": DEVICE}),
            "device_id and device_sha256 disagree",
        ),
    ],
)
def test_each_refusal_names_the_field_and_why_never_a_value(token: str, why: str) -> None:
    refused = refusal(token)
    assert (refused.field, why in refused.message) == ("identity_token", True), refused.message
    assert "a@example.com" not in refused.message and not isinstance(refused, StaleToken)


def test_a_token_lives_exactly_its_maximum_lifetime() -> None:
    identity = verifier().verify(signed({"exp": IAT + 600}), T)
    assert identity.expires_at - identity.issued_at == 600


def test_the_device_digest_claim_is_unpadded_base64url_sha256_of_the_ids_bytes() -> None:
    # The README's vector, for a shop backend in any language (openssl dgst -sha256 -binary |
    # basenc --base64url, '=' dropped)
    assert device_sha256("3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f") == (
        "b4Ms3j0LUBI0ebx8AQE5hCMD_izEnKY2jFmM4vaPOJA"
    )
    assert DIGEST == "QOCBHbH6FKccja0doJ2xsPY44qyOylYRutNputc_0JY"


@pytest.mark.parametrize(
    "claims",
    [{"device_sha256": DIGEST}, {"device_id": DEVICE},  # the new claim; the old, in clear
     {"device_sha256": DIGEST, "device_id": DEVICE}],  # both, agreeing
)  # fmt: skip
def test_a_device_claim_binds_the_token_to_that_device_only(claims: dict[str, object]) -> None:
    identity = verifier().verify(signed(claims), T)
    assert identity.binds_device(DEVICE)
    assert not identity.binds_device("dev-other-bbbbbbbbbbbb")
    assert not identity.binds_device(DEVICE.upper())  # an id is exact, case included
    assert DEVICE not in repr(identity)


def test_a_token_naming_no_device_binds_any() -> None:
    assert verifier().verify(signed({}), T).binds_device("dev-other-bbbbbbbbbbbb")


def test_mint_signs_for_300_seconds_and_names_a_device_only_when_given_one() -> None:
    bare = mint(ROTATED, "optout-bridge", {"email": "a@example.com"}, T)
    claims = jwt.decode(bare, options={"verify_signature": False})
    assert (claims["exp"] - claims["iat"], "device_sha256" in claims) == (300, False)
    bound = mint(ROTATED, "optout-bridge", {"email": "a@example.com"}, T, device_id=DEVICE)
    assert verifier().verify(bound, T).binds_device(DEVICE)
    # by its hash only: whoever sees the token cannot read the browser's id from it
    claims = jwt.decode(bound, options={"verify_signature": False})
    assert (claims["device_sha256"], "device_id" in claims) == (DIGEST, False)
    assert DEVICE not in json.dumps(claims)


def test_mint_signs_only_the_identifiers_given_a_value() -> None:
    # the demo login passes its form as it came: an empty phone is not a phone claim
    token = mint(ROTATED, "optout-bridge", {"email": "a@example.com", "phone": "", "x": "y"}, T)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "phone" not in claims and "x" not in claims
    assert [i.type for i in verifier().verify(token, T).identifiers] == ["email"]


def test_two_tokens_of_one_key_are_two_uses_and_one_token_again_is_the_same_use() -> None:
    first, second = signed({}), signed({"jti": "another"})
    uses = [verifier().verify(t, T).use_key for t in (first, second, first)]
    assert uses[0] != uses[1] and uses[0] == uses[2]


def test_iat_and_nbf_are_judged_at_the_now_given_even_ahead_of_the_wall_clock() -> None:
    # a request replayed from a queue, or a test's clock: PyJWT must not judge them itself
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    at = int(ahead.timestamp())
    for claims in ({"iat": at, "exp": at + 60}, {"iat": at, "exp": at + 60, "nbf": at}):
        assert verifier().verify(signed(claims), ahead).issued_at == at


def test_the_evidence_of_a_token_names_its_key_times_and_types_never_its_values() -> None:
    token = mint(ROTATED, "optout-bridge", {"email": "a@example.com", "customer_id": "c-1"}, T)
    assert verifier().verify(token, T).evidence() == {
        "kid": "k2", "iat": IAT, "exp": IAT + 300, "types": ["customer_id", "email"],
    }  # fmt: skip


def test_unusable_keys_leave_a_token_out_as_stale_naming_the_field() -> None:
    unverifiable = TokenUnverifiable()
    assert isinstance(unverifiable, StaleToken) and unverifiable.field == "identity_token"
    assert unverifiable.message == (
        "identity_token could not be verified: the token keys are unusable"
    )


def test_token_keys_never_show_a_key_in_their_repr() -> None:
    assert "n" * 40 not in repr(ROTATED) and "o" * 40 not in repr(ROTATED)
