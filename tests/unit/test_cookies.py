"""A cookie is read by its exact name (optout/http/cookies.py; review s29 stranger S1)."""

import pytest

from optout.http.cookies import loopback_http, only_value, split_header

HOST = "__Host-optout_device_id"
DEVICE = "c00k1e-dev1ce-0123456789"
PLANTED = "a77ac4e7" * 4
# Unicode spaces Python's str.strip() drops and RFC 6265 §5.2 does not: a name starting with
# one is not `__Host-`, so a browser lets a sibling subdomain set it (Domain=<parent>)
UNICODE_SPACES = ["\u2000", "\u00a0", "\u3000", "\u0085", "\u2028", "\u205f", "\u000b"]


@pytest.mark.parametrize("space", UNICODE_SPACES)
def test_a_name_behind_a_unicode_space_is_not_the_cookie(space: str) -> None:
    assert only_value([f"{space}{HOST}={PLANTED}"], HOST) is None
    assert only_value([f"{HOST}{space}={PLANTED}"], HOST) is None


@pytest.mark.parametrize("space", UNICODE_SPACES)
def test_a_unicode_spaced_name_beside_the_real_cookie_is_a_second_copy(space: str) -> None:
    # Which one is the browser's own cannot be told (some reader may strip wider): neither
    assert only_value([f"{space}{HOST}={PLANTED}", f"{HOST}={DEVICE}"], HOST) is None
    assert only_value([f"{HOST}={DEVICE}", f"{HOST}{space}={PLANTED}"], HOST) is None


def test_the_exact_name_is_read_trimmed_of_sp_and_htab_only() -> None:
    assert only_value(["theme=dark", f" \t{HOST}={DEVICE}"], HOST) == DEVICE
    assert only_value([f"{HOST} = {DEVICE} "], HOST) == DEVICE
    assert only_value([f"{HOST}={PLANTED}", f"{HOST}={DEVICE}"], HOST) is None
    assert only_value([f"x{HOST}={DEVICE}", f"{HOST.lower()}={DEVICE}"], HOST) is None


def test_a_cookie_header_is_split_and_trimmed_of_sp_and_htab_only() -> None:
    header = f"theme=dark;\t{HOST}={DEVICE}; ;\u00a0{HOST}={PLANTED}"
    assert split_header(header) == ["theme=dark", f"{HOST}={DEVICE}", f"\u00a0{HOST}={PLANTED}"]
    assert only_value(split_header(header), HOST) is None


@pytest.mark.parametrize(
    ("origin", "loopback"),
    [
        ("http://127.0.0.1:3288", True),
        ("http://127.0.0.1", True),
        ("http://localhost:8741", True),
        ("http://[::1]:8741", True),
        ("http://shop.example.com", False),  # an http:// AllowedOrigins entry (review s29 S3)
        ("http://127.0.0.1.evil.example", False),
        ("http://localhost.evil.example:80", False),
        ("http://127.0.0.2", False),
        ("http://192.168.1.5:8741", False),
        ("https://127.0.0.1:3288", False),  # https pages use the __Host- cookie
        ("null", False),
        ("", False),
        (None, False),
    ],
)
def test_the_plain_cookie_is_only_for_an_http_page_on_this_machine(
    origin: str | None, loopback: bool
) -> None:
    assert loopback_http(origin) is loopback
