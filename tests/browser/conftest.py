"""Browser tests: Debian's Chromium driven by Playwright (no browser download), against the local stack.

The stack is the one the e2e tests use (Azurite, the Face emulator, the local host with
PRINCIPAL_SOURCE=local, so the Easy Auth stand-in signs test users in), plus CORS on Azurite for
the page's origin. The camera is Chromium's fake capture device, fed a Y4M video made at test time
from a test photo in ../shared/testdata/faces (never copied into the repository).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from local.storage_cors import allow_browser_uploads, app_origins
from tests.fixtures.app_stack import AppStack, app_env
from tests.fixtures.azurite import ROOT, Azurite, free_port
from tests.fixtures.local_host import start_host
from tests.fixtures.paths import FACES

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "front-end"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
CAMERA_PHOTO = "family2-lady/1.jpg"


def write_y4m(photo: Path, out: Path, *, width: int = 640, height: int = 480, frames: int = 3) -> Path:
    """A short 4:2:0 Y4M clip of ``photo`` centred on grey (BT.601 limited range, what Chromium expects)."""
    src = Image.open(photo).convert("RGB")
    scale = min(width / src.width, height / src.height)
    src = src.resize((max(2, int(src.width * scale)), max(2, int(src.height * scale))), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height), (128, 128, 128))
    canvas.paste(src, ((width - src.width) // 2, (height - src.height) // 2))
    rgb = np.asarray(canvas, dtype=np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b

    def sub(plane: Any) -> Any:  # 2x2 average for 4:2:0
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = [np.clip(p, 0, 255).round().astype(np.uint8).tobytes() for p in (y, sub(cb), sub(cr))]
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n")
            for p in planes:
                f.write(p)
    return out


@dataclass
class WebStack:
    app: AppStack

    @property
    def url(self) -> str:
        return f"{self.app.host.url}/api/web/"


@pytest.fixture(scope="module")
def web_stack(azurite: Azurite, face_emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    env = app_env(azurite, face_emulator.endpoint)
    env["PRINCIPAL_SOURCE"] = "local"
    port = free_port()
    allow_browser_uploads(azurite.connection_string, app_origins(f"http://127.0.0.1:{port}"))
    log: Path = tmp_path_factory.mktemp("webhost") / "host.log"
    host = start_host(env=env, log_path=log, port=port, extra_args=["--no-timers"])
    yield WebStack(AppStack(host, azurite, face_emulator, env))
    host.stop()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make setup` (npm ci)")
    sync_api = pytest.importorskip("playwright.sync_api")
    video = write_y4m(FACES / CAMERA_PHOTO, tmp_path_factory.mktemp("camera") / "face.y4m")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return AXE.read_text()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def axe_log() -> Iterator[list[dict[str, Any]]]:
    """Every axe run of the session (screen, violations, passes), printed at the end for the record."""
    runs: list[dict[str, Any]] = []
    yield runs
    if runs:
        print("\naxe-core runs (WCAG 2.1 A/AA):", json.dumps(runs, indent=None))
