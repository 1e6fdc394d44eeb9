"""Nothing of the uploaded container survives: a marker planted in every metadata slot JPEG and PNG allow
is in no byte that validate_image returns (what the pipeline sends to Face and keeps), and the output has
only the segments/chunks needed to hold pixels. tests/e2e/test_hostile_uploads.py checks the kept blob."""

from __future__ import annotations

import inspect
import io
import struct

import pytest
from PIL import Image, ImageCms

from shared.adapters.image_sandbox import SandboxedImageCheck
from shared.images import validate_image
from shared.services import enrollment
from tests.fixtures.paths import face_bytes
from tests.hostile.metadata import MARKER, compressed_markers, jpeg_with_marker_everywhere, png_with_marker_everywhere

pytestmark = pytest.mark.unit

JPEG_KEEP = {0xD8, 0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDA, 0xDD, 0xD9}  # SOI, JFIF, tables, frame, scans, EOI


def jpeg_markers(data: bytes) -> list[int]:
    """Markers of a JPEG's segments (entropy-coded data skipped)."""
    out, i = [0xD8], 2
    while i < len(data):
        assert data[i] == 0xFF
        marker = data[i + 1]
        out.append(marker)
        if marker == 0xD9:
            assert i + 2 == len(data), "bytes after EOI"
            break
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        i += 2 + length
        if marker == 0xDA:
            while not (data[i] == 0xFF and data[i + 1] not in (0x00, *range(0xD0, 0xD8))):
                i += 1
    return out


def png_chunks(data: bytes) -> list[bytes]:
    out, i = [], 8
    while i < len(data):
        length = struct.unpack(">I", data[i:i + 4])[0]
        out.append(data[i + 4:i + 8])
        i += 12 + length
    return out


def assert_nothing_survives(data: bytes) -> None:
    for needle in (MARKER, MARKER.lower(), MARKER.decode().encode("utf-16-le"), *compressed_markers()):
        assert needle not in data
    if data.startswith(b"\xff\xd8"):
        assert set(jpeg_markers(data)) <= JPEG_KEEP
        assert data[2:20] == b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # no thumbnail
    else:
        assert set(png_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND"}


def test_the_planted_jpeg_really_carries_the_marker_in_every_slot() -> None:
    planted = jpeg_with_marker_everywhere(face_bytes("family1-dad/1.jpg"))
    assert planted.count(MARKER) >= 12
    with Image.open(io.BytesIO(planted)) as image:  # still a readable photo
        image.load()
        assert image.getexif()


def test_no_jpeg_metadata_survives() -> None:
    planted = jpeg_with_marker_everywhere(face_bytes("family1-dad/1.jpg"))
    result = validate_image(planted)
    assert result.format == "JPEG"
    assert_nothing_survives(result.data)


def test_a_real_icc_profile_carrying_text_does_not_survive() -> None:
    # A genuine profile with text appended after its declared size: applied to the pixels, never copied.
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() + MARKER
    out = io.BytesIO()
    Image.open(io.BytesIO(face_bytes("family1-dad/1.jpg"))).save(out, "JPEG", icc_profile=profile, comment=MARKER)
    assert_nothing_survives(validate_image(out.getvalue()).data)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_no_png_metadata_survives(mode: str) -> None:
    image = Image.open(io.BytesIO(face_bytes("family1-dad/1.jpg"))).convert(mode)
    if mode == "RGBA":
        image.putpixel((0, 0), (0, 0, 0, 0))  # real transparency: the output stays PNG
    base = io.BytesIO()
    image.save(base, "PNG")
    planted = png_with_marker_everywhere(base.getvalue())
    assert planted.count(MARKER) >= 4
    result = validate_image(planted)
    assert result.format == ("PNG" if mode == "RGBA" else "JPEG")
    assert_nothing_survives(result.data)


def test_the_pipeline_sends_and_keeps_only_what_validate_image_returns() -> None:
    # The enroll pipeline's only path from upload bytes to Face and to photo storage is the image check
    # port, and the app's adapter of it is validate_image (in its sandbox).
    source = inspect.getsource(enrollment.EnrollmentService._enroll_photo)
    assert "image = self._images.validate(content)" in source
    assert "return validate_image(data, self._limits)" in inspect.getsource(SandboxedImageCheck.validate)
    # The Limited Access steps (detect, person, add-face) take the validated image, never the upload bytes.
    assert "self._add_to_group(upload, image)" in source
    source += inspect.getsource(enrollment.EnrollmentService._add_to_group)
    assert "self._face.detect(image.data" in source
    assert "self._add_face_once(upload, person_id, group, image.data" in source
    assert "content=image.data" in source
    assert "content=content" not in source
