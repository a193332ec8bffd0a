"""`POST /_local/demo/login`: the demo shop's login backend, minting real identity tokens.

A real shop's backend authenticates the person, then signs a short-lived identity token with
the key it shares with the bridge (README: "Identity tokens"); the page passes it on with its
next `POST /v1/consent`. Here there is no password, so this authenticates nobody: only the
demo's own accounts sign in, addresses at `demo.example.com` (inside a domain reserved for
documentation, RFC 2606), which the README's token example, the demo shop and the e2e tests use;
any other address, `jane@example.com` included, is refused (403). Without that, anyone could
sign in as anyone on `make run` and read or lift their opt-out (review s23 C1). The token is
signed with the documented development key, so the demo and the e2e tests take the same token
path production does. It binds the browser's device id (the banner's cookie, or `device_id`
in the body) by its hash (`device_sha256`: the id is the browser's credential, and a token is
readable by whoever sees it), so the token names only that device, and like every token it
makes one request (README: "A token makes one request"). Local stack only.
"""

import json
from datetime import UTC, datetime

from local.http_types import Incoming, Outgoing, error_answer, json_answer
from optout import identifiers as ids
from optout.errors import InvalidInput
from optout.http.cookies import only_value, split_header
from optout.identity_token import mint
from optout.settings import Settings
from optout.token_keys import load_token_keys

PATH = "/_local/demo/login"
LIFETIME_SECONDS = 300
DEVICE_COOKIE = "optout_device_id"
DEMO_DOMAIN = "demo.example.com"
NOT_A_DEMO_ACCOUNT = (
    f"the demo login signs in only demo accounts, addresses at {DEMO_DOMAIN}: it checks no "
    "password, so it is not authentication"
)


def serve(request: Incoming) -> Outgoing:
    if request.method != "POST":
        return error_answer(405, "method_not_allowed", "POST {email, device_id?}")
    try:
        given = json.loads(request.body or b"{}")
    except ValueError:
        return error_answer(400, "malformed_json", "the body is not valid JSON")
    if not isinstance(given, dict) or not isinstance(given.get("email"), str):
        return error_answer(422, "invalid_field", "send {email, device_id?}")
    device = given.get("device_id") or _cookie(request)
    try:
        email = ids.normalise_email(given["email"])
        if device is not None:
            ids.normalise_device_id(str(device))
    except InvalidInput as error:
        return error_answer(422, "invalid_field", error.message)
    if not is_demo_account(email):  # the message never names the address (PII)
        return error_answer(403, "forbidden", NOT_A_DEMO_ACCOUNT, "email")
    settings = Settings.from_env()  # the stack's environment: OPTOUT_LOCAL_MODE, the audience
    token = mint(load_token_keys(settings), settings.identity_token_audience, {"email": email},
                 datetime.now(UTC), LIFETIME_SECONDS, str(device) if device else None)  # fmt: skip
    return json_answer(200, {"identity_token": token, "expires_in": LIFETIME_SECONDS})


def is_demo_account(email: str) -> bool:
    """An address of the demo's own domain: no real person's, nor one a check of the trust
    rules would pick for a stranger (`victim@example.com`). `email` is normalised."""
    return email.rpartition("@")[2] == DEMO_DOMAIN


def _cookie(request: Incoming) -> str | None:
    """The banner's device cookie (http: the plain name); none when it is named twice, as a
    sibling subdomain can plant a second one (review s28 diff M1): a real shop's backend reads
    `__Host-optout_device_id` on https the same way, its name matched exactly (README,
    "Identity tokens"; optout/http/cookies.py)."""
    return only_value(split_header(request.header("cookie") or ""), DEVICE_COOKIE) or None
