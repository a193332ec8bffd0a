"""Serve the demo site in web/ at `/` (banner.js and its build, the shop, the webform, the
requests page), with the headers a production host should send for the same files."""

from pathlib import Path

from local.http_types import Outgoing, error_answer

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
HIDDEN = {"tests", "node_modules"}  # the site's own test tooling is not part of the site

# Every page runs only scripts and styles from its own origin: no inline script can run (an
# injected one included), the pages cannot be framed (clickjacking a "Save choices" button),
# and forms post only to the site. banner.js styles its shadow root with a constructed
# stylesheet, so it needs no 'unsafe-inline' either.
PAGE_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    # A site that opens a page with window.open gets no handle on it, so it cannot ask the
    # page's __gpp / __uspapi for the visitor's choices by postMessage (review s26 F5).
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


class StaticSite:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def serve(self, path: str, head: bool = False) -> Outgoing:
        target = self._locate(path)
        if target is None:
            return error_answer(404, "not_found", "no such page")
        content_type = CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream")
        body = b"" if head else target.read_bytes()
        headers = [
            ("Content-Type", content_type),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),  # a .js is never read as anything else
        ]
        if target.suffix.lower() == ".html":
            headers.extend(PAGE_HEADERS)
        if head:
            headers.append(("Content-Length", str(target.stat().st_size)))
        return Outgoing(200, headers, body)

    def _locate(self, path: str) -> Path | None:
        relative = path.lstrip("/")
        if relative.split("/", 1)[0] in HIDDEN:
            return None
        candidate = (self._root / relative).resolve()
        # Refuse anything outside web/ (../ tricks, symlinks pointing away).
        if candidate != self._root and self._root not in candidate.parents:
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"
        elif not candidate.exists() and not candidate.suffix:
            candidate = candidate.with_suffix(".html")  # /privacy -> privacy.html
        return candidate if candidate.is_file() else None
