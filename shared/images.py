"""Validates an uploaded photo by its content and normalises it for Azure Face.

Face accepts JPEG, PNG, GIF (first frame) and BMP of 1 KB to 6 MB and applies EXIF orientation
itself. We check the same limits before spending a Face call, decide the format from the bytes
(never from a file name or a declared content type), refuse decompression bombs before any pixel
is decoded, and fully decode the image so truncated or corrupt files are refused here.

What goes to Face (and, with consent, into photo storage) is ``ValidatedImage.data``:

* **Original bytes, unchanged**, only when they are already a *clean* JPEG or PNG: RGB or grayscale,
  no transparency, and no metadata at all. "Clean" is decided by walking the file's own segments /
  chunks against an allowlist (JPEG: JFIF APP0, ICC profile APP2, Adobe APP14; PNG: IHDR, PLTE, IDAT,
  IEND and colour/density chunks) and requires that nothing follows the end marker. So unchanged
  bytes never carry EXIF (no GPS, no camera serial, no orientation), XMP, IPTC, comments, MPF
  secondary images or appended data. Browser captures (``canvas.toBlob``) are clean, so the common
  path costs no re-encode and no generation loss.
* **Re-encoded** otherwise: EXIF orientation applied (``ImageOps.exif_transpose``), first frame only,
  converted to RGB/L (RGBA when the image really has transparency), then saved as JPEG quality 95
  (PNG when there is transparency) with no EXIF/XMP/comments; only an ICC profile is kept so colours
  stay right. If that output exceeds ``max_bytes`` JPEG quality steps down (PNG falls back to JPEG on
  white).

Why not re-encode always: stripping metadata is what privacy needs (a phone photo's EXIF holds GPS
coordinates), and the allowlist guarantees that for every output; re-encoding a file that has no
metadata would only add generation loss, CPU time and a byte-for-byte different copy of the photo.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image, ImageOps

__all__ = ["ImageRejected", "ValidatedImage", "validate_image"]

MIN_BYTES = 1024
MAX_BYTES = 6 * 1024 * 1024
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 95
_FALLBACK_QUALITIES = (90, 85, 80, 75, 70)

_ACCEPTED = ("JPEG", "PNG", "BMP", "GIF")  # what Image.open may try (MPO comes through the JPEG opener)
_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "GIF": "image/gif"}

NOT_AN_IMAGE = "The file is not a photo we can read; upload a JPEG, PNG, BMP or GIF."
TOO_SMALL = "The photo file is too small; upload the original photo."
TOO_LARGE = "The photo is larger than 6 MB; upload a smaller photo."
TOO_MANY_PIXELS = "The photo has too many pixels; upload a photo of at most 40 megapixels."


class ImageRejected(Exception):
    """The upload cannot be used. ``code`` is stable; ``reason`` is a sentence the person can act on."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ValidatedImage:
    """The photo to send to Face. ``format``, ``content_type``, ``width`` and ``height`` describe ``data``
    (after re-encoding, if any); ``source_format`` is what was uploaded."""

    data: bytes = field(repr=False)
    format: str  # JPEG | PNG | BMP | GIF (BMP and GIF are always re-encoded, so in practice JPEG | PNG)
    width: int
    height: int
    content_type: str
    source_format: str = ""
    reencoded: bool = False


# --- metadata allowlists -------------------------------------------------------------------------

_JPEG_ALLOWED_APP = {0xE0: b"JFIF\x00", 0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
_PNG_ALLOWED_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"iCCP",
                                 b"pHYs", b"sBIT", b"cICP", b"bKGD"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _jpeg_is_clean(data: bytes) -> bool:
    """True when the JPEG has only allowlisted APPn segments, no COM, and nothing after EOI."""
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return False
    i = 2
    while i < n:
        if data[i] != 0xFF:
            return False
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return False
        marker = data[i]
        i += 1
        if marker == 0xD9:  # EOI
            return i == n
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # stand-alone markers
            continue
        if i + 2 > n:
            return False
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2 or i + length > n:
            return False
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            prefix = _JPEG_ALLOWED_APP.get(marker)
            if prefix is None or not data[i + 2:i + length].startswith(prefix):
                return False
        i += length
        if marker == 0xDA:  # SOS: skip the entropy-coded data up to the next real marker
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return False
                following = data[j + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    i = j + 2
                elif following == 0xFF:
                    i = j + 1
                else:
                    i = j
                    break
    return False


def _png_is_clean(data: bytes) -> bool:
    """True when every chunk is allowlisted and IEND ends the file."""
    if not data.startswith(_PNG_SIGNATURE):
        return False
    i, n = len(_PNG_SIGNATURE), len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i:i + 4], "big")
        chunk_type = data[i + 4:i + 8]
        if chunk_type not in _PNG_ALLOWED_CHUNKS:
            return False
        i += 12 + length
        if chunk_type == b"IEND":
            return i == n
    return False


# --- decoding ------------------------------------------------------------------------------------

def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=_ACCEPTED)  # lazy: reads the header only
    except Image.DecompressionBombError:
        raise ImageRejected("tooManyPixels", TOO_MANY_PIXELS) from None
    except Exception:  # UnidentifiedImageError, OSError, SyntaxError, ValueError ... from a hostile header
        raise ImageRejected("notAnImage", NOT_AN_IMAGE) from None
    if image.format not in ("JPEG", "MPO", "PNG", "BMP", "GIF"):
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    if width * height > max_pixels:  # before any pixel is decoded
        raise ImageRejected("tooManyPixels", TOO_MANY_PIXELS)
    try:
        image.seek(0)
        image.load()  # decodes the first frame; truncated/corrupt data raises here
    except Image.DecompressionBombError:
        raise ImageRejected("tooManyPixels", TOO_MANY_PIXELS) from None
    except Exception:
        raise ImageRejected("notAnImage", NOT_AN_IMAGE) from None
    return image


def _has_alpha(image: Image.Image) -> bool:
    if not image.has_transparency_data:
        return False
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    low = rgba.getchannel("A").getextrema()[0]
    return isinstance(low, int | float) and low < 255


def _standard(image: Image.Image) -> Image.Image:
    """RGB or L, or RGBA when the image really has transparency."""
    if _has_alpha(image):
        return image if image.mode == "RGBA" else image.convert("RGBA")
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grayscale: scale, do not clip
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1", "LA", "La"):
        return image.convert("L")
    return image.convert("RGB")  # P, PA, RGBA (opaque), CMYK, YCbCr, LAB ...


def _save(image: Image.Image, fmt: str, icc: bytes | None, *, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    options: dict[str, object] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=quality, optimize=True, **options)
    else:
        image.save(out, "PNG", optimize=False, compress_level=6, **options)
    return out.getvalue()


def _reencode(image: Image.Image, max_bytes: int) -> tuple[bytes, str, Image.Image]:
    icc = image.info.get("icc_profile")
    icc = icc if isinstance(icc, bytes) else None
    upright = ImageOps.exif_transpose(image)
    assert upright is not None  # in_place=False always returns a new image
    upright = _standard(upright)  # a new image too, so its info may be cleared:
    upright.info = {}  # Pillow's encoders copy some metadata (e.g. the JPEG comment) from info
    if upright.mode == "RGBA":
        data = _save(upright, "PNG", icc)
        if len(data) <= max_bytes:
            return data, "PNG", upright
        flat = Image.new("RGB", upright.size, (255, 255, 255))
        flat.paste(upright, mask=upright.getchannel("A"))
        upright = flat
    for quality in (JPEG_QUALITY, *_FALLBACK_QUALITIES):
        data = _save(upright, "JPEG", icc, quality=quality)
        if len(data) <= max_bytes:
            return data, "JPEG", upright
    raise ImageRejected("tooLarge", TOO_LARGE)


def validate_image(data: bytes, *, min_bytes: int = MIN_BYTES, max_bytes: int = MAX_BYTES,
                   max_pixels: int = MAX_PIXELS) -> ValidatedImage:
    """Checks size, format (sniffed from content), pixel count and decodability; returns what to send to Face.

    Raises :class:`ImageRejected` with code ``tooSmall``, ``tooLarge``, ``notAnImage`` or ``tooManyPixels``.
    Never changes Pillow's global ``Image.MAX_IMAGE_PIXELS``; its own bomb check (a warning above ~89 MP,
    an error above twice that) is caught as ``tooManyPixels``, but ``max_pixels`` is enforced first.
    """
    size = len(data)
    if size < min_bytes:
        raise ImageRejected("tooSmall", TOO_SMALL)
    if size > max_bytes:
        raise ImageRejected("tooLarge", TOO_LARGE)
    image = _open(bytes(data), max_pixels)
    try:
        source = "JPEG" if image.format == "MPO" else str(image.format)
        clean = ((image.format == "JPEG" and _jpeg_is_clean(data)) or (image.format == "PNG" and _png_is_clean(data)))
        if clean and image.mode in ("RGB", "L") and not _has_alpha(image):
            return ValidatedImage(data=bytes(data), format=source, width=image.width, height=image.height,
                                  content_type=_CONTENT_TYPES[source], source_format=source)
        try:
            out, fmt, result = _reencode(image, max_bytes)
        except ImageRejected:
            raise
        except Exception:  # a decoder/encoder failure on odd input is the upload's problem, not a crash
            raise ImageRejected("notAnImage", NOT_AN_IMAGE) from None
        if len(out) < min_bytes:
            raise ImageRejected("tooSmall", TOO_SMALL)
        return ValidatedImage(data=out, format=fmt, width=result.width, height=result.height,
                              content_type=_CONTENT_TYPES[fmt], source_format=source, reencoded=True)
    finally:
        image.close()
