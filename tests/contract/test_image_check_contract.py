"""ImageCheckPort: InProcessImageCheck (the service tier's) and SandboxedImageCheck (the app's) give the
same photo, or the same rejection, for the same file. What only the sandbox does, stopping a file that
costs more than its decode budget, is tested against it alone (tests/integration/test_hostile_images.py,
tests/e2e/test_hostile_uploads.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shared.adapters.image_sandbox import SandboxedImageCheck
from shared.images import ImageRejected
from shared.ports import ImageCheckPort
from shared.settings import Settings
from tests.fakes import InProcessImageCheck, photo
from tests.fixtures.paths import face_bytes

SETTINGS = Settings.from_env({"IMAGE_MAX_SIDE": "2000"})


@pytest.fixture(params=["fake", "sandbox"])
def images(request: pytest.FixtureRequest) -> ImageCheckPort:
    if request.param == "fake":
        return InProcessImageCheck(SETTINGS)
    return SandboxedImageCheck.from_settings(SETTINGS)


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 90, 60)).save(out, "PNG")
    return out.getvalue()


def test_the_same_photo_comes_back_for_the_same_file(images: ImageCheckPort) -> None:
    reference = InProcessImageCheck(SETTINGS)
    for data in (photo(17), face_bytes("family1-dad/1.jpg"), _png(640, 480)):
        got, want = images.validate(data), reference.validate(data)
        assert (got.format, got.width, got.height, got.content_type, got.source_format) == \
            (want.format, want.width, want.height, want.content_type, want.source_format)
        assert got.data == want.data  # re-encoded from the same pixels by the same code


@pytest.mark.parametrize(("data", "code"), [
    (b"\x00" * 4096, "notAnImage"),
    (b"\xff\xd8\xff" + b"\x00" * 4096, "notAnImage"),
    (_png(4000, 100), "tooManyPixels"),
    (_png(40, 40), "tooSmall"),
], ids=["zeros", "truncated-jpeg", "too-wide", "too-small"])
def test_the_same_rejection_for_the_same_file(images: ImageCheckPort, data: bytes, code: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        images.validate(data)
    reference = InProcessImageCheck(SETTINGS)
    with pytest.raises(ImageRejected) as expected:
        reference.validate(data)
    assert caught.value.code == expected.value.code == code
    assert caught.value.reason == expected.value.reason


def test_the_same_size_bound(images: ImageCheckPort) -> None:
    assert images.max_bytes == InProcessImageCheck(SETTINGS).max_bytes > 0
