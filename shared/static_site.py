"""The reference front end's files (web/), served by the Function App on the API's own origin.

Same origin on purpose: App Service Authentication's session cookie carries the identity, so no
token ever sits in JavaScript. This module decides what one request for ``/api/web/<path>`` gets;
the HTTP function only maps the answer. Pure apart from reading files under ``web/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from shared.settings import Settings

__all__ = ["WEB_ROOT", "StaticReply", "blob_origin", "content_security_policy", "serve"]

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"

#: Only these kinds of file are served; anything else under web/ is a 404, so a stray file
#: (a backup, a source map, a dotfile) never leaks.
CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

#: The page that ends a kiosk session: the browser drops this origin's cache and storage
#: (https://www.w3.org/TR/clear-site-data/), whatever the previous user left there.
SIGNED_OUT_PAGE = "signed-out.html"

MAX_PATH_CHARS = 200


@dataclass(frozen=True)
class StaticReply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def blob_origin(settings: Settings) -> str | None:
    """The origin the browser PUTs photos to (the SAS URLs' scheme://host:port), for connect-src."""
    uri = settings.blob_service_uri
    if not uri and settings.photo_storage_connection:
        parts = dict(p.split("=", 1) for p in settings.photo_storage_connection.split(";") if "=" in p)
        uri = parts.get("BlobEndpoint")
        if not uri and parts.get("AccountName"):
            scheme = parts.get("DefaultEndpointsProtocol", "https")
            uri = f"{scheme}://{parts['AccountName']}.blob.{parts.get('EndpointSuffix', 'core.windows.net')}"
    if not uri:
        return None
    split = urlsplit(uri.strip())
    if split.scheme not in ("http", "https") or not split.netloc:
        return None
    return f"{split.scheme}://{split.netloc}"


def content_security_policy(settings: Settings) -> str:
    """Strict: our own scripts and styles only, no inline code, no framing; uploads only to the photo account."""
    upload = blob_origin(settings)
    connect = "'self'" + (f" {upload}" if upload else "")
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "media-src 'self' blob: mediastream:",
        f"connect-src {connect}",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ])


def _security_headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=(), usb=()",
        "X-Frame-Options": "DENY",
    }


def _not_found(settings: Settings) -> StaticReply:
    return StaticReply(404, b"Not found.", {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store",
                                            **_security_headers(settings)})


def _resolve(path: str, root: Path) -> Path | None:
    """The file under ``root`` that ``path`` names, or None. Refuses anything that could leave ``root``
    or reach a hidden file: ``..``, ``.``, dot-segments, backslashes, NUL, drive letters, absolute paths."""
    if len(path) > MAX_PATH_CHARS or any(c in path for c in ("\\", "\x00", ":", "%")):
        return None
    if path == "" or path.endswith("/"):
        path += "index.html"
    segments = path.split("/")
    if any(s == "" or s.startswith(".") for s in segments):
        return None
    base = root.resolve()
    candidate = (base / Path(*segments)).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    if candidate.suffix.lower() not in CONTENT_TYPES:
        return None
    return candidate


def serve(path: str, *, request_path: str, settings: Settings, root: Path = WEB_ROOT) -> StaticReply:
    """One GET/HEAD for ``/api/web/<path>``. ``request_path`` is the URL path the browser asked for."""
    if path == "" and not request_path.endswith("/"):
        # Relative module and style URLs resolve against the directory: /api/web -> /api/web/
        return StaticReply(301, b"", {"Location": request_path.rsplit("/", 1)[-1] + "/", "Cache-Control": "no-store"})
    found = _resolve(path, root)
    if found is None:
        return _not_found(settings)
    headers = {"Content-Type": CONTENT_TYPES[found.suffix.lower()], **_security_headers(settings)}
    # No user data is ever in these files, but the kiosk promise is "nothing stays": HTML is never
    # stored (so Back after sign-out cannot show a previous page), assets are revalidated each time.
    headers["Cache-Control"] = "no-store" if found.suffix.lower() == ".html" else "no-cache"
    if found.name == SIGNED_OUT_PAGE:
        headers["Clear-Site-Data"] = '"cache", "storage"'
    return StaticReply(200, found.read_bytes(), headers)
