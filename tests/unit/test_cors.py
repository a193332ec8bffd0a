"""optout.http.cors: the headers the hot routes add are the ones Powertools' CORSConfig adds,
for every kind of origin, so an answer is the same whichever path served it."""

import pytest
from aws_lambda_powertools.event_handler import CORSConfig

from optout.http.cors import Cors, origin_of

CONFIGS = {
    "one origin": Cors(("https://shop.example.com",), ("Content-Type", "Idempotency-Key"), 600),
    "two origins": Cors(("https://a.example", "https://b.example"), ("Idempotency-Key",), 60),
    "any origin": Cors(("*",), (), 0),
}
ORIGINS = (None, "", "https://shop.example.com", "https://a.example", "https://b.example",
           "https://evil.example", "null", "*")  # fmt: skip


def _powertools(config: CORSConfig, origin: str | None) -> dict[str, str]:
    # What the Event Handler does with a request's Origin (ResponseBuilder._add_cors).
    allowed = config.allowed_origin(origin) if origin else None
    return config.to_dict(allowed) if allowed is not None else {}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("origin", ORIGINS)
def test_the_headers_are_powertools_own(name: str, origin: str | None) -> None:
    cors = CONFIGS[name]
    assert cors.headers(origin) == _powertools(cors.powertools(), origin)


def test_an_allowed_origin_gets_the_headers_and_another_none() -> None:
    cors = CONFIGS["one origin"]
    assert cors.headers("https://shop.example.com")["Access-Control-Allow-Origin"] == (
        "https://shop.example.com"
    )
    assert cors.headers("https://evil.example") == {}


def test_origins_come_from_the_environment_with_a_closed_default() -> None:
    env = {"ALLOWED_ORIGINS": " https://a.example , https://b.example,"}
    assert Cors.from_env(env, (), 1).origins == ("https://a.example", "https://b.example")
    assert Cors.from_env({}, (), 1).origins == ("https://example.invalid",)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Shop.Example.com/privacy?x=1#y", "https://shop.example.com"),
        ("https://shop.example.com:443/p", "https://shop.example.com"),  # as browsers send it
        ("http://127.0.0.1:3287/privacy.html", "http://127.0.0.1:3287"),
        ("https://user:pw@h.example:8443/x", "https://h.example:8443"),
        ("https://[::1]:8443/", "https://[::1]:8443"),
        ("", None), ("/privacy.html", None), ("javascript:alert(1)", None),
        ("https://h.example:99999/", None),
    ],
)  # fmt: skip
def test_a_pages_origin_is_the_one_its_form_posts_carry(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_our_own_origins_are_trusted_beside_the_listed_ones_and_star_never() -> None:
    cors = Cors(("https://shop.example.com",), (), 0)
    assert cors.trusts("https://shop.example.com")
    assert cors.trusts("https://pages.example.net", None, "https://pages.example.net")
    assert not cors.trusts("https://evil.example", None, "https://pages.example.net")
    assert not cors.trusts(None, None) and not cors.trusts("", "")
    assert not Cors(("*",), (), 0).trusts("*", "*")
