"""Serve the demo site in web/ at `/` (banner.js, the shop, the webform, the requests page)."""

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


class StaticSite:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def serve(self, path: str, head: bool = False) -> Outgoing:
        target = self._locate(path)
        if target is None:
            return error_answer(404, "not_found", "no such page")
        content_type = CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream")
        body = b"" if head else target.read_bytes()
        headers = [("Content-Type", content_type), ("Cache-Control", "no-cache")]
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
