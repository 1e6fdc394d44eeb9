"""Validates an uploaded photo by its content, at a bounded cost, and re-encodes it from its pixels.

Face accepts JPEG, PNG, GIF (first frame) and BMP of 1 KB to 6 MB and detects faces of 36x36 up to
4096x4096 pixels (docs/security.md cites the page). An upload is hostile until shown otherwise, so
every check that can be made without decoding comes first, and decoding comes last, in a budget:

1. **Size** (``min_bytes``..``max_bytes``), before anything else (the trigger checks the blob's
   declared length even before reading it, see ``functions/enroll``).
2. **Format from the magic bytes** (never a file name or a declared content type), then the
   **declared dimensions parsed from the header** by our own small parsers (JPEG SOF, PNG IHDR,
   GIF logical screen, BMP DIB header): each side must be at least ``min_side`` (no detectable
   face fits in less) and at most ``max_side`` (no larger face is detectable), and the product at
   most ``max_pixels``. A 6300x6300 striped PNG of 150 KB is refused here, before any pixel exists.
3. **The JPEG stream's structure**: only Huffman baseline/extended/progressive frames, at most
   ``max_scans`` scans (SOS markers, counted over the entropy-coded data) and a bounded number of
   segments. A progressive "scan bomb" (thousands of empty AC scans, each making the decoder walk
   every block of the frame again) is refused here: ``tooCostly``. PNG chunks are counted the same way.
4. **Decoding and re-encoding in a sandbox** (``_run_isolated``): a process forked from a
   ``forkserver`` (a clean, single-threaded parent that has already imported Pillow, so a fork costs
   milliseconds and never copies the host's threads or sockets) that arms a CPU-time timer of
   ``cpu_seconds`` (``ITIMER_PROF``: SIGPROF ends it, to the millisecond), with ``RLIMIT_CPU`` a second
   behind it as the kernel's backstop, and sets ``RLIMIT_AS`` (its own address space plus
   ``memory_mb``) on itself before it reads a byte; after one second the caller drops it to the
   lowest CPU priority, waits at most ``wall_seconds`` in all and kills it. Whatever the decoder
   does with a file the checks above did not foresee, the cost is capped by the kernel; a file that
   hits a limit is refused as ``tooCostly`` (never retried).

What goes to Face (and, with consent, into photo storage) is always ``ValidatedImage.data``, an image
**re-encoded from pixels**: EXIF orientation applied, first frame only, an embedded ICC profile
applied to convert to sRGB (then dropped; a profile that is not a real one is ignored), converted to
RGB/L (RGBA when the image really has transparency), scaled down to at most ``output_side`` pixels
on its longer side (Face documents that beyond 1920x1080 the smallest detectable face grows in
proportion, so this loses no detectable face), and saved as JPEG (PNG when there is transparency)
with no metadata at all. So no byte of the uploaded container survives: no EXIF (GPS, serial
numbers), XMP, IPTC, ICC text, comments, JFIF/EXIF thumbnails, MPF secondary images, PNG text
chunks or data appended after the end marker.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import struct
import threading
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = ["DEFAULT_LIMITS", "ImageLimits", "ImageRejected", "ValidatedImage", "limits_from", "validate_image"]

MIN_BYTES = 1024
MAX_BYTES = 6 * 1024 * 1024
MIN_SIDE = 36  # the smallest face Face detects
MAX_SIDE = 4096  # the largest face Face detects; a larger image is refused, not shrunk (it costs more to decode)
MAX_PIXELS = MAX_SIDE * MAX_SIDE
MAX_JPEG_SCANS = 64  # encoders write 1 (baseline) or about 10 (progressive); 64 leaves room for tuned scripts
MAX_SEGMENTS = 2000  # JPEG markers outside the entropy-coded data / PNG chunks; real files have tens to hundreds
OUTPUT_SIDE = 1920
CPU_SECONDS = 2.0
MEMORY_MB = 200
WALL_SECONDS = 30.0  # generous: a costly sandbox runs at the lowest priority; the CPU limit bounds the work
JPEG_QUALITY = 95
_FALLBACK_QUALITIES = (90, 85, 80, 75, 70)

_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "GIF": "image/gif"}

NOT_AN_IMAGE = "The file is not a photo we can read; upload a JPEG, PNG, BMP or GIF."
TOO_SMALL = "The photo file is too small; upload the original photo."
TOO_LARGE = "The photo is larger than 6 MB; upload a smaller photo."
TOO_COSTLY = ("The file is too costly to process (it is built to take far more time or memory than a photo "
              "of its size); upload an ordinary camera photo instead.")


def _too_many_pixels(limits: ImageLimits) -> str:
    return (f"The photo is larger than {limits.max_side} x {limits.max_side} pixels (or {limits.max_pixels:,} pixels "
            "in all); upload a smaller photo.")


def _too_few_pixels(limits: ImageLimits) -> str:
    return f"The photo is smaller than {limits.min_side} x {limits.min_side} pixels; upload the original photo."


class ImageRejected(Exception):
    """The upload cannot be used. ``code`` is stable; ``reason`` is a sentence the person can act on."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ImageLimits:
    """Every bound on what one upload may cost. The defaults are the app's settings' defaults."""

    min_bytes: int = MIN_BYTES
    max_bytes: int = MAX_BYTES
    min_side: int = MIN_SIDE
    max_side: int = MAX_SIDE
    max_pixels: int = MAX_PIXELS
    max_scans: int = MAX_JPEG_SCANS
    max_segments: int = MAX_SEGMENTS
    output_side: int = OUTPUT_SIDE
    cpu_seconds: float = CPU_SECONDS
    memory_mb: int = MEMORY_MB
    wall_seconds: float = WALL_SECONDS
    isolate: bool = True  # False only for benchmarks that measure the work itself, and for tests that patch it


DEFAULT_LIMITS = ImageLimits()


def limits_from(settings: Settings) -> ImageLimits:
    """The limits the app settings ask for (docs/security.md lists each)."""
    side = settings.image_max_side
    return ImageLimits(max_side=side, max_pixels=side * side, max_scans=settings.image_max_jpeg_scans,
                       cpu_seconds=settings.image_decode_cpu_seconds, memory_mb=settings.image_decode_memory_mb,
                       wall_seconds=settings.image_decode_wall_seconds)
_LIMIT_NAMES = frozenset(f.name for f in fields(ImageLimits))


@dataclass(frozen=True)
class ValidatedImage:
    """The photo to send to Face. ``format``, ``content_type``, ``width`` and ``height`` describe ``data``
    (re-encoded from pixels); ``source_format`` is what was uploaded."""

    data: bytes = field(repr=False)
    format: str  # JPEG | PNG
    width: int
    height: int
    content_type: str
    source_format: str = ""
    reencoded: bool = True


# --- header checks (no pixel decoded) ------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Huffman-coded frames: baseline, extended sequential, progressive. Lossless, hierarchical and
# arithmetic-coded JPEGs are not written by cameras or browsers; refusing them shrinks what a
# hostile file can ask of the decoder.
_JPEG_SOF_OK = {0xC0, 0xC1, 0xC2}
_JPEG_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# In entropy-coded data 0xFF is followed by 0x00 (a stuffed byte), 0xD0-0xD7 (a restart marker) or
# 0xFF (fill); anything else starts the next segment. A regex finds it at C speed even in a file of
# 6 MB of stuffed bytes.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True)
class _Header:
    format: str
    width: int
    height: int
    scans: int = 0


def _sniff(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data.startswith(b"BM"):
        return "BMP"
    raise ImageRejected("notAnImage", NOT_AN_IMAGE)


def _jpeg_header(data: bytes, limits: ImageLimits) -> _Header:
    """Walks the segments up to EOI: the frame's dimensions and the number of scans."""
    n = len(data)
    i = 2
    width = height = 0
    scans = segments = 0
    while i < n:
        if data[i] != 0xFF:
            raise ImageRejected("notAnImage", NOT_AN_IMAGE)
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        segments += 1
        if segments > limits.max_segments:
            raise ImageRejected("tooCostly", TOO_COSTLY)
        if marker == 0xD9:  # EOI: what follows (an MPO's second image, appended data) is never decoded
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if i + 2 > n:
            break
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2:
            raise ImageRejected("notAnImage", NOT_AN_IMAGE)
        if marker in _JPEG_SOF_OTHER:
            raise ImageRejected("notAnImage", NOT_AN_IMAGE)
        if marker in _JPEG_SOF_OK:
            if width or length < 8 or i + 7 > n:  # a second frame header, or a cut one
                raise ImageRejected("notAnImage", NOT_AN_IMAGE)
            height, width = struct.unpack(">HH", data[i + 3:i + 7])
            if not (width and height):  # height 0 = defined later by a DNL segment: refused
                raise ImageRejected("notAnImage", NOT_AN_IMAGE)
        i += length
        if marker == 0xDA:  # SOS: count it, then skip its entropy-coded data
            if not width:
                raise ImageRejected("notAnImage", NOT_AN_IMAGE)
            scans += 1
            if scans > limits.max_scans:
                raise ImageRejected("tooCostly", TOO_COSTLY)
            found = _NEXT_MARKER.search(data, i)
            if found is None:
                break
            i = found.start()
    if not width:
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    return _Header("JPEG", width, height, scans)


def _png_header(data: bytes, limits: ImageLimits) -> _Header:
    if len(data) < 33 or data[12:16] != b"IHDR" or data[8:12] != b"\x00\x00\x00\x0d":
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    width, height = struct.unpack(">II", data[16:24])
    i, n, chunks = 8, len(data), 0
    while i + 12 <= n:
        chunks += 1
        if chunks > limits.max_segments:
            raise ImageRejected("tooCostly", TOO_COSTLY)
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        i += 12 + length
        if kind == b"IEND":
            break
    return _Header("PNG", width, height)


def _gif_header(data: bytes) -> _Header:
    if len(data) < 10:
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    width, height = struct.unpack("<HH", data[6:10])
    return _Header("GIF", width, height)


def _bmp_header(data: bytes) -> _Header:
    if len(data) < 26:
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    dib = int.from_bytes(data[14:18], "little")
    if dib == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
        planes, bits = struct.unpack("<HH", data[22:26])
    elif dib in (16, 40, 52, 56, 64, 108, 124) and len(data) >= 30:
        width, height = struct.unpack("<ii", data[18:26])
        planes, bits = struct.unpack("<HH", data[26:30])
    else:
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    if planes != 1 or bits not in (1, 2, 4, 8, 16, 24, 32, 64):  # not a bitmap header, whatever its first bytes say
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    return _Header("BMP", abs(width), abs(height))


def check_header(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> _Header:
    """Everything that can be refused from the header alone, at a cost linear in the file size."""
    fmt = _sniff(data)
    if fmt == "JPEG":
        header = _jpeg_header(data, limits)
    elif fmt == "PNG":
        header = _png_header(data, limits)
    elif fmt == "GIF":
        header = _gif_header(data)
    else:
        header = _bmp_header(data)
    _check_dimensions(header.width, header.height, limits)
    return header


def _check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise ImageRejected("tooManyPixels", _too_many_pixels(limits))
    if width < limits.min_side or height < limits.min_side:
        raise ImageRejected("tooSmall", _too_few_pixels(limits))


# --- decoding and re-encoding (runs in the sandbox) ----------------------------------------------

def _open(data: bytes, fmt: str, limits: ImageLimits) -> Image.Image:
    # Pillow's own bomb check stays at its default; ours (the header check, and again here) is stricter.
    try:
        image = Image.open(io.BytesIO(data), formats=(fmt,))  # lazy: reads the header only
    except Image.DecompressionBombError:
        raise ImageRejected("tooManyPixels", _too_many_pixels(limits)) from None
    except Exception:  # UnidentifiedImageError, OSError, SyntaxError, ValueError ... from a hostile header
        raise ImageRejected("notAnImage", NOT_AN_IMAGE) from None
    if image.format not in (fmt, "MPO" if fmt == "JPEG" else fmt):
        raise ImageRejected("notAnImage", NOT_AN_IMAGE)
    _check_dimensions(image.width, image.height, limits)  # what Pillow will decode, not what we parsed
    return image


def _has_alpha(image: Image.Image) -> bool:
    if not image.has_transparency_data:
        return False
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    low = rgba.getchannel("A").getextrema()[0]
    return isinstance(low, int | float) and low < 255


def _standard(image: Image.Image) -> Image.Image:
    """RGB or L, or RGBA when the image really has transparency."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grayscale: scale, do not clip
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if _has_alpha(image):
        return image if image.mode == "RGBA" else image.convert("RGBA")
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("1", "LA", "La"):
        return image.convert("L")
    return image.convert("RGB")  # P, PA, RGBA (opaque), CMYK, YCbCr, LAB ...


def _to_srgb(image: Image.Image, icc: object) -> Image.Image:
    """Applies an embedded colour profile so the pixels are sRGB; a profile that does not parse is ignored."""
    if not isinstance(icc, bytes) or image.mode not in ("RGB", "RGBA", "L"):
        return image
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        if image.mode == "L":
            return image  # a gray profile's transfer curve is not worth a conversion
        converted = ImageCms.profileToProfile(image, source, target, outputMode=image.mode)
        return converted if converted is not None else image
    except Exception:  # not a real ICC profile (e.g. text after "ICC_PROFILE\0"): the pixels stay as they are
        return image


def _save(image: Image.Image, fmt: str, *, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=quality, optimize=True)
    else:
        image.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _transcode(data: bytes, fmt: str, limits: ImageLimits) -> tuple[bytes, str, int, int, str]:
    """Decodes the first frame and re-encodes it from pixels: (data, format, width, height, source format)."""
    image = _open(data, fmt, limits)
    try:
        if fmt == "JPEG" and image.mode in ("RGB", "L") and max(image.size) > limits.output_side:
            # DCT scaling: libjpeg decodes straight to 1/2, 1/4 or 1/8 size, cheaper in time and memory.
            image.draft(image.mode, _fit(image.size, limits.output_side))
        try:
            image.seek(0)
            image.load()  # decodes the first frame; truncated/corrupt data raises here
        except Image.DecompressionBombError:
            raise ImageRejected("tooManyPixels", _too_many_pixels(limits)) from None
        except MemoryError:
            raise
        except Exception:
            raise ImageRejected("notAnImage", NOT_AN_IMAGE) from None
        icc = image.info.get("icc_profile")
        exif_orientation = image.getexif().get(0x0112, 1)
        picture: Image.Image = image
        if picture.mode.startswith("I;16") and max(picture.size) > limits.output_side:
            # 16-bit grayscale: shrink before widening to 32-bit integers (4 bytes a pixel, twice over).
            picture = picture.resize(_fit(picture.size, limits.output_side), Image.Resampling.BILINEAR)
            image.im = None  # type: ignore[assignment]  # the full-size pixels are no longer needed
        picture = _standard(picture)
        if max(picture.size) > limits.output_side:
            picture = picture.resize(_fit(picture.size, limits.output_side), Image.Resampling.LANCZOS,
                                     reducing_gap=2.0)
        picture = _to_srgb(picture, icc)
        if exif_orientation != 1:
            picture.getexif()[0x0112] = exif_orientation  # exif_transpose reads it from the image it is given
            upright = ImageOps.exif_transpose(picture)
            assert upright is not None  # in_place=False always returns a new image
            picture = upright
        clean = Image.new(picture.mode, picture.size)  # a fresh image: nothing of the source's info comes along
        clean.paste(picture)
        return (*_encode(clean, limits), "JPEG" if image.format == "MPO" else str(image.format))
    finally:
        image.close()


def _encode(picture: Image.Image, limits: ImageLimits) -> tuple[bytes, str, int, int]:
    if picture.mode == "RGBA":
        out = _save(picture, "PNG")
        if len(out) <= limits.max_bytes:
            return out, "PNG", picture.width, picture.height
        flat = Image.new("RGB", picture.size, (255, 255, 255))
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    for quality in (JPEG_QUALITY, *_FALLBACK_QUALITIES):
        out = _save(picture, "JPEG", quality=quality)
        if len(out) <= limits.max_bytes:
            return out, "JPEG", picture.width, picture.height
    raise ImageRejected("tooLarge", TOO_LARGE)


def _transcode_or_reject(data: bytes, fmt: str, limits: ImageLimits) -> tuple[str, Any]:
    try:
        return "ok", _transcode(data, fmt, limits)
    except ImageRejected as exc:
        return "rejected", (exc.code, exc.reason)
    except MemoryError:
        return "rejected", ("tooCostly", TOO_COSTLY)
    except Exception as exc:  # a decoder/encoder failure on odd input is the upload's problem, not a crash
        if "memory" in str(exc).lower():  # libjpeg/zlib report a refused allocation as an error, not MemoryError
            return "rejected", ("tooCostly", TOO_COSTLY)
        return "rejected", ("notAnImage", NOT_AN_IMAGE)


# --- the sandbox ---------------------------------------------------------------------------------

_context_lock = threading.Lock()
_context: Any = None


def _sandbox() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["shared.images"])
            _context = ctx
        return _context


def _limit_self(limits: ImageLimits) -> None:
    import resource

    cpu = max(0.01, float(limits.cpu_seconds))
    # The budget to the millisecond: the profiling timer counts this process's CPU time (user and system)
    # from now and its SIGPROF, unhandled here, ends the process.
    signal.setitimer(signal.ITIMER_PROF, cpu)
    # Behind it the kernel's limit, in whole seconds of the process's total CPU time (a forked child
    # inherits its parent's): SIGXCPU, then SIGKILL, should the timer's signal ever be blocked.
    used = resource.getrusage(resource.RUSAGE_SELF)
    hard = math.ceil(used.ru_utime + used.ru_stime + cpu) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (hard, hard + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        with open("/proc/self/statm") as f:
            vsize = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    budget = vsize + limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (budget, budget))


def _sandboxed(conn: multiprocessing.connection.Connection, data: bytes, fmt: str, limits: ImageLimits) -> None:
    try:
        _limit_self(limits)
        outcome = _transcode_or_reject(data, fmt, limits)
        del data
        conn.send(outcome)
    except MemoryError:
        try:
            conn.send(("rejected", ("tooCostly", TOO_COSTLY)))
        except Exception:
            pass
    finally:
        conn.close()


_COSTLY_SIGNALS = {signal.SIGPROF, signal.SIGXCPU, signal.SIGKILL}


def _run_isolated(data: bytes, fmt: str, limits: ImageLimits) -> tuple[str, Any]:
    ctx = _sandbox()
    receiver, sender = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_sandboxed, args=(sender, data, fmt, limits), daemon=True)
    worker.start()
    sender.close()
    outcome: tuple[str, Any] | None = None
    try:
        # An ordinary photo is done well within a second. One that is not drops to the lowest CPU
        # priority for the rest of its budget, so costly uploads never slow down the ordinary ones
        # (another user's photo, the HTTP API) for long.
        quick = min(1.0, limits.wall_seconds)
        if not receiver.poll(quick) and worker.pid is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, worker.pid, 19)
            except OSError:  # it has just ended
                pass
        if receiver.poll(max(0.0, limits.wall_seconds - quick)):
            try:
                outcome = receiver.recv()
            except (EOFError, OSError):  # the worker died before answering
                outcome = None
    finally:
        timed_out = outcome is None and worker.is_alive()
        if worker.is_alive():
            worker.kill()
        worker.join(5)
        receiver.close()
    if outcome is not None:
        return outcome
    code = worker.exitcode
    if timed_out or (code is not None and code < 0 and -code in _COSTLY_SIGNALS):
        return "rejected", ("tooCostly", TOO_COSTLY)
    return "rejected", ("notAnImage", NOT_AN_IMAGE)  # crashed on its own (e.g. a decoder fault): not a photo


# --- the entry point -----------------------------------------------------------------------------

def validate_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS, **overrides: Any) -> ValidatedImage:
    """Checks size, format (sniffed from content), dimensions, stream structure and decodability within a
    budget; returns the photo re-encoded from its pixels, to send to Face and (with consent) to keep.

    ``overrides`` replace single fields of ``limits`` (e.g. ``max_bytes=...``). Raises
    :class:`ImageRejected` with code ``tooSmall``, ``tooLarge``, ``notAnImage``, ``tooManyPixels`` or
    ``tooCostly``. Never changes Pillow's global ``Image.MAX_IMAGE_PIXELS``.
    """
    if overrides:
        unknown = set(overrides) - _LIMIT_NAMES
        if unknown:
            raise TypeError(f"unknown image limit(s): {', '.join(sorted(unknown))}")
        limits = replace(limits, **overrides)
    size = len(data)
    if size < limits.min_bytes:
        raise ImageRejected("tooSmall", TOO_SMALL)
    if size > limits.max_bytes:
        raise ImageRejected("tooLarge", TOO_LARGE)
    data = bytes(data)
    header = check_header(data, limits)
    kind, payload = (_run_isolated(data, header.format, limits) if limits.isolate
                     else _transcode_or_reject(data, header.format, limits))
    if kind != "ok":
        code, reason = payload
        raise ImageRejected(code, reason)
    out, fmt, width, height, source = payload
    if len(out) < limits.min_bytes:
        raise ImageRejected("tooSmall", TOO_SMALL)
    return ValidatedImage(data=out, format=fmt, width=width, height=height, content_type=_CONTENT_TYPES[fmt],
                          source_format=source, reencoded=True)
