"""What the web function answers, decided without a host: paths, types, headers, the upload origin."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings, azurite_connection_string
from shared.static_site import WEB_ROOT, blob_origin, content_security_policy, serve

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    (root / "i18n").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>x</title>")
    (root / "i18n" / "en.json").write_text("{}")
    (root / ".secret.json").write_text("{}")
    (root / "notes.md").write_text("draft")
    (tmp_path / "outside.json").write_text('{"secret": 1}')
    (root / "link.json").symlink_to(tmp_path / "outside.json")
    return root


def get(path: str, root: Path, settings: Settings | None = None) -> tuple[int, dict[str, str], bytes]:
    r = serve(path, request_path=f"/api/web/{path}", settings=settings or Settings(), root=root)
    return r.status, r.headers, r.body


def test_files_and_the_index(site: Path) -> None:
    assert get("", site)[0] == 200 and get("", site)[1]["Content-Type"].startswith("text/html")
    assert get("i18n/en.json", site)[1]["Content-Type"] == "application/json; charset=utf-8"
    assert get("i18n/", site)[0] == 404  # no index there, and no listing ever


@pytest.mark.parametrize("path", ["../outside.json", "i18n/../../outside.json", "link.json", ".secret.json",
                                  "notes.md", "i18n//en.json", "./index.html", "..", "a\\..\\b", "%2e%2e/x",
                                  "x\x00.html", "C:/x.html", "/etc/passwd", "index.html/", "a" * 300 + ".html"])
def test_nothing_outside_web_or_off_the_list_is_served(site: Path, path: str) -> None:
    status, headers, body = get(path, site)
    assert status == 404 and b"secret" not in body and b"draft" not in body
    assert headers["Cache-Control"] == "no-store"


def test_redirect_to_the_directory_form() -> None:
    r = serve("", request_path="/api/web", settings=Settings())
    assert r.status == 301 and r.headers["Location"] == "web/"


@pytest.mark.parametrize(("settings", "origin"), [
    (Settings(photo_storage_connection=azurite_connection_string(blob=10000)), "http://127.0.0.1:10000"),
    (Settings(blob_service_uri="https://stphotos.blob.core.windows.net/"), "https://stphotos.blob.core.windows.net"),
    (Settings(photo_storage_connection="DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k;"
                                       "EndpointSuffix=core.windows.net"), "https://acct.blob.core.windows.net"),
    (Settings(), None),
    (Settings(blob_service_uri="javascript:alert(1)"), None),
])
def test_the_upload_origin_comes_from_the_photo_account(settings: Settings, origin: str | None) -> None:
    assert blob_origin(settings) == origin
    csp = content_security_policy(settings)
    assert f"connect-src 'self'{' ' + origin if origin else ''};" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp


def test_the_real_web_folder_is_complete_and_deployed() -> None:
    for name in ("index.html", "app.js", "i18n.js", "styles.css", "config.json", "signed-out.html", "signed-out.js",
                 "i18n/en.json"):
        assert (WEB_ROOT / name).is_file(), name
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip()]
    assert not {"web", "web/*", "*.html", "*.js", "*.css", "*.json"} & set(ignored), ignored


def test_every_text_key_the_page_uses_exists_in_english() -> None:
    import json
    import re

    texts = json.loads((WEB_ROOT / "i18n" / "en.json").read_text())
    used: set[str] = set()
    for name in ("index.html", "signed-out.html"):
        used |= set(re.findall(r'data-i18n(?:-aria-label)?="([^"]+)"', (WEB_ROOT / name).read_text()))
    for name in ("app.js", "signed-out.js"):
        used |= set(re.findall(r'\bt\("([a-zA-Z.]+)"', (WEB_ROOT / name).read_text()))
    assert used and not used - set(texts), sorted(used - set(texts))
