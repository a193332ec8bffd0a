"""optout.http.cors: the headers the hot routes add are the ones Powertools' CORSConfig adds,
for every kind of origin, so an answer is the same whichever path served it."""

import pytest
from aws_lambda_powertools.event_handler import CORSConfig

from optout.http.cors import Cors

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
