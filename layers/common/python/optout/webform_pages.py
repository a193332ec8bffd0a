"""HTML answers for the no-JavaScript webform: a confirmation page and an error page.

A browser that posted the plain form expects a page, not JSON (CCPA §7026: the method must be
easy to use). Every value shown is escaped; identifier values are never shown back.
"""

from html import escape
from typing import Any
from urllib.parse import urlsplit

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
    "color:#1f2937}h1{font-size:1.5rem}a{color:#1d4ed8}.error{color:#b91c1c}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8>"
        f'<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style><main>{body}</main></html>"
    )


def confirmation_page(answer: dict[str, Any]) -> str:
    rid, deadline = escape(answer["request_id"]), escape(answer["deadline"])
    return _page(
        "Opt-out received",
        "<h1>We received your opt-out request</h1>"
        f"<p>Request ID: <strong>{rid}</strong></p>"
        f"<p>We will complete it by <strong>{deadline}</strong>.</p>"
        # Relative to the page's own URL (<base>/v1/opt-out), so the link keeps an execute-api
        # stage prefix (/prod/v1/...) as well as working behind the edge's own domain.
        f'<p><a href="requests/{rid}">Check the status of your request</a></p>',
    )


def error_page(message: str, field: str | None, back: str | None) -> str:
    where = f" (field: {escape(field)})" if field and field != "body" else ""
    target = back if back and urlsplit(back).scheme in ("http", "https") else "/privacy.html"
    return _page(
        "Opt-out not sent",
        "<h1>We could not send your opt-out request</h1>"
        f"<p class=error role=alert>{escape(message)}{where}</p>"
        "<p>Give at least one of: email address, phone number (with country code) or customer "
        "number.</p>"
        f'<p><a href="{escape(target, quote=True)}">Go back to the form</a></p>',
    )
