"""shared.images.validate_image: size, content sniffing, bomb safety, decoding, orientation, metadata stripping."""

from __future__ import annotations

import io
import random
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms

from shared import images
from shared.images import ImageRejected, ValidatedImage, validate_image

pytestmark = pytest.mark.unit

EXIF_SAMPLE = Path("/work/shared/testdata/faces/quality/exif-orientation-6.jpg")
GPS_IFD = 0x8825


# --- builders ------------------------------------------------------------------------------------

def noise(size: tuple[int, int] = (160, 120), mode: str = "RGB", seed: int = 1) -> Image.Image:
    """Random pixels, so encoded files are comfortably above 1 KB."""
    bands = len(mode) if mode in ("RGB", "RGBA", "CMYK", "LA") else 1
    raw = random.Random(seed).randbytes(size[0] * size[1] * bands)
    return Image.frombytes(mode, size, raw)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def exif_with(orientation: int | None = None, gps: bool = False) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCam"
    if gps:
        exif[GPS_IFD] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (47.0, 38.0, 0.0)}
    return exif.tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def declared_size_png(width: int, height: int) -> bytes:
    """A small, valid PNG whose IHDR is patched to claim width x height (CRC fixed)."""
    data = bytearray(encode(noise((40, 30)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:20] = struct.pack(">I", width)
    data[20:24] = struct.pack(">I", height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def opened(result: ValidatedImage) -> Image.Image:
    image = Image.open(io.BytesIO(result.data))
    image.load()
    return image


def rejected(data: bytes, **kwargs: int | bool) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        validate_image(data, **kwargs)
    return info.value


# --- sizes ---------------------------------------------------------------------------------------

def test_under_one_kilobyte_is_too_small() -> None:
    err = rejected(b"\xff\xd8\xff" + b"\0" * 1000)
    assert err.code == "tooSmall"
    assert err.reason == "The photo file is too small; upload the original photo."
    assert str(err) == err.reason


def test_empty_upload_is_too_small() -> None:
    assert rejected(b"").code == "tooSmall"


def test_over_six_megabytes_is_too_large_without_decoding() -> None:
    data = encode(noise(), "PNG")
    padded = data + b"\0" * (6 * 1024 * 1024 + 1 - len(data))
    err = rejected(padded)
    assert err.code == "tooLarge"
    assert err.reason == "The photo is larger than 6 MB; upload a smaller photo."


def test_size_bounds_are_inclusive() -> None:
    data = encode(noise(), "JPEG")
    assert validate_image(data, max_bytes=len(data)).width == 160  # the bounds apply to the upload's size
    assert rejected(data, min_bytes=len(data) + 1).code == "tooSmall"
    assert rejected(data, max_bytes=len(data) - 1).code == "tooLarge"


def test_defaults_match_the_face_limits() -> None:
    assert (images.MIN_BYTES, images.MAX_BYTES) == (1024, 6 * 1024 * 1024)
    assert (images.MIN_SIDE, images.MAX_SIDE, images.MAX_PIXELS) == (36, 4096, 4096 * 4096)


# --- formats -------------------------------------------------------------------------------------

def similar(a: Image.Image, b: Image.Image) -> bool:
    """Mean absolute luma difference below 4 levels (JPEG at quality 95 of JPEG)."""
    from PIL import ImageChops, ImageStat

    diff = ImageStat.Stat(ImageChops.difference(a.convert("L"), b.convert("L"))).mean  # luma: chroma is subsampled
    return max(diff) < 4


def test_ordinary_jpeg_is_reencoded_from_pixels() -> None:
    data = encode(noise(), "JPEG", quality=90)
    result = validate_image(data)
    assert result.data != data
    assert (result.format, result.content_type, result.width, result.height) == ("JPEG", "image/jpeg", 160, 120)
    assert (result.source_format, result.reencoded) == ("JPEG", True)
    assert similar(opened(result), Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("options", [{"progressive": True}, {"restart_marker_blocks": 1}, {"subsampling": 0}])
def test_jpeg_variants_are_accepted(options: dict[str, object]) -> None:
    data = encode(noise(), "JPEG", **options)
    result = validate_image(data)
    assert (result.width, result.height) == (160, 120) and similar(opened(result), Image.open(io.BytesIO(data)))


def test_grayscale_jpeg_stays_grayscale() -> None:
    data = encode(noise(mode="L"), "JPEG")
    result = validate_image(data)
    assert result.reencoded and opened(result).mode == "L"


def test_opaque_png_becomes_jpeg() -> None:
    data = encode(noise(), "PNG")
    result = validate_image(data)
    assert (result.format, result.content_type, result.source_format) == ("JPEG", "image/jpeg", "PNG")


def test_large_photos_are_scaled_to_the_output_side() -> None:
    data = encode(noise((4000, 1000), mode="L"), "JPEG", quality=50)
    result = validate_image(data)
    assert (result.width, result.height) == (1920, 480)
    assert opened(result).size == (1920, 480)


def test_png_with_real_alpha_is_reencoded_as_png() -> None:
    image = noise(mode="RGBA")
    data = encode(image, "PNG")
    result = validate_image(data)
    assert (result.format, result.reencoded) == ("PNG", True)
    assert opened(result).mode == "RGBA"
    assert opened(result).tobytes() == image.tobytes()  # lossless


def test_png_with_opaque_alpha_becomes_jpeg() -> None:
    image = noise()
    image.putalpha(255)
    result = validate_image(encode(image, "PNG"))
    assert (result.format, result.content_type) == ("JPEG", "image/jpeg")
    assert opened(result).mode == "RGB"


def test_palette_png_is_reencoded() -> None:
    data = encode(noise().convert("P", palette=Image.Palette.ADAPTIVE), "PNG")
    result = validate_image(data)
    assert result.reencoded and result.format == "JPEG" and opened(result).mode == "RGB"


def test_sixteen_bit_grayscale_png_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (120, 120), 0x4000)  # a quarter of full scale
    image.putpixel((0, 0), 0xFFFF)
    result = validate_image(encode(image, "PNG"), min_bytes=1)  # a flat image compresses below 1 KB
    out = opened(result)
    assert out.mode == "L"
    assert abs(out.getpixel((60, 60)) - 0x40) <= 2  # type: ignore[operator]


def test_bmp_is_reencoded_to_jpeg() -> None:
    result = validate_image(encode(noise(), "BMP"))
    assert (result.format, result.source_format, result.reencoded) == ("JPEG", "BMP", True)
    assert (result.width, result.height) == (160, 120)
    assert opened(result).format == "JPEG"


def test_animated_gif_sends_the_first_frame_only() -> None:
    frames = []
    for colour in ((255, 0, 0), (0, 0, 255)):
        frame = noise(seed=7)
        frame.paste(colour, (0, 0, 60, 60))
        frames.append(frame.convert("P", palette=Image.Palette.ADAPTIVE))
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    result = validate_image(data)
    assert (result.format, result.source_format) == ("JPEG", "GIF")
    red, green, blue = opened(result).getpixel((30, 30))  # type: ignore[misc]
    assert red > 200 and blue < 60 and green < 60


def test_gif_with_transparency_becomes_png_or_falls_back_to_jpeg_when_too_big() -> None:
    frame = noise().convert("P", palette=Image.Palette.ADAPTIVE)
    data = encode(frame, "GIF", transparency=0)
    as_png = validate_image(data)
    assert as_png.format == "PNG" and opened(as_png).mode == "RGBA"
    # With the limit at the GIF's own size the RGBA PNG no longer fits: flattened JPEG instead.
    assert len(as_png.data) > len(data)
    squeezed = validate_image(data, max_bytes=len(data))
    assert squeezed.format == "JPEG" and len(squeezed.data) <= len(data)


def test_mpo_is_treated_as_jpeg_and_loses_its_secondary_image() -> None:
    first, second = noise(seed=1), noise(seed=2)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    result = validate_image(data)
    assert (result.format, result.source_format, result.reencoded) == ("JPEG", "JPEG", True)
    assert opened(result).format == "JPEG"
    assert b"MPF" not in result.data
    assert len(result.data) < len(data) * 0.75  # one image, not two


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    result = validate_image(encode(noise(mode="CMYK"), "JPEG"))
    assert result.reencoded and opened(result).mode == "RGB"


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP", "ICO", "PPM", "TGA"])
def test_other_image_formats_are_not_accepted(fmt: str) -> None:
    data = encode(noise((64, 64)), fmt)
    assert len(data) >= 1024
    err = rejected(data)
    assert err.code == "notAnImage"
    assert err.reason == "The file is not a photo we can read; upload a JPEG, PNG, BMP or GIF."


def test_random_bytes_are_not_an_image() -> None:
    assert rejected(random.Random(3).randbytes(5000)).code == "notAnImage"


def test_a_pdf_named_like_a_photo_is_not_an_image() -> None:
    assert rejected(b"%PDF-1.7\n" + b"x" * 4000).code == "notAnImage"


def test_truncated_jpeg_is_not_an_image() -> None:
    data = encode(noise((400, 300)), "JPEG")
    assert rejected(data[: len(data) // 2]).code == "notAnImage"


def test_truncated_png_is_not_an_image() -> None:
    data = encode(noise((400, 300)), "PNG")
    assert rejected(data[: len(data) // 2]).code == "notAnImage"


def test_corrupt_png_crc_is_not_an_image() -> None:
    data = bytearray(encode(noise(), "PNG"))
    data[29] ^= 0xFF  # IHDR CRC
    assert rejected(bytes(data)).code == "notAnImage"


# --- decompression bombs -------------------------------------------------------------------------

def test_huge_declared_size_is_refused_before_decoding() -> None:
    bomb = declared_size_png(50000, 50000)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        err = rejected(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.code == "tooManyPixels"
    assert err.reason.endswith(".")
    assert peak < 5 * 1024 * 1024  # 50000x50000 RGB would be 7.5 GB


def test_over_the_limit_but_under_pillows_own_limit_is_refused() -> None:
    assert rejected(declared_size_png(7000, 6000)).code == "tooManyPixels"  # 42 MP > 40 MP, < 89 MP


def test_pillows_decompression_bomb_error_is_mapped() -> None:
    # Even if the caller raises max_pixels beyond Pillow's own bomb limit, Pillow's error is caught.
    assert rejected(declared_size_png(20000, 20000), max_pixels=10**12).code == "tooManyPixels"


def test_pixel_limit_is_inclusive() -> None:
    data = encode(noise((100, 50)), "PNG")
    assert validate_image(data, max_pixels=5000).width == 100
    assert rejected(data, max_pixels=4999).code == "tooManyPixels"


def test_global_pillow_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    for data in (declared_size_png(50000, 50000), encode(noise(), "JPEG")):
        try:
            validate_image(data)
        except ImageRejected:
            pass
    assert before == Image.MAX_IMAGE_PIXELS


# --- orientation and metadata --------------------------------------------------------------------

def test_exif_orientation_6_is_applied() -> None:
    source = noise((300, 200))
    source.paste((255, 0, 0), (0, 0, 40, 40))  # a red mark in the top-left corner
    data = encode(source, "JPEG", exif=exif_with(orientation=6))
    result = validate_image(data)
    assert result.reencoded
    assert (result.width, result.height) == (200, 300)
    out = opened(result)
    assert out.size == (200, 300)
    assert ExifTags.Base.Orientation not in out.getexif()
    red, green, blue = out.getpixel((180, 20))  # type: ignore[misc]
    assert red > 180 and green < 90 and blue < 90  # top-left rotated 90° clockwise lands top-right


def test_the_shared_orientation_sample_comes_back_upright() -> None:
    data = EXIF_SAMPLE.read_bytes()
    assert Image.open(io.BytesIO(data)).size == (1200, 626)
    result = validate_image(data)
    assert (result.width, result.height) == (626, 1200)
    assert opened(result).size == (626, 1200)
    assert len(opened(result).getexif()) == 0


def test_gps_exif_is_stripped_even_without_rotation() -> None:
    data = encode(noise(), "JPEG", exif=exif_with(orientation=1, gps=True))
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)
    result = validate_image(data)
    assert result.reencoded
    assert b"Exif" not in result.data and b"TestCam" not in result.data
    assert len(opened(result).getexif()) == 0
    assert (result.width, result.height) == (160, 120)


def test_png_exif_and_text_are_stripped() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Somebody Private")
    data = encode(noise(), "PNG", pnginfo=info, exif=exif_with(gps=True))
    result = validate_image(data)
    assert result.reencoded
    assert b"Somebody Private" not in result.data and b"TestCam" not in result.data


def test_jpeg_comment_is_stripped() -> None:
    data = encode(noise(), "JPEG", comment=b"home address")
    result = validate_image(data)
    assert result.reencoded and b"home address" not in result.data


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_data_appended_after_the_image_is_dropped(fmt: str) -> None:
    data = encode(noise(), fmt) + b"PK\x03\x04 hidden archive"
    result = validate_image(data)
    assert result.reencoded and b"hidden archive" not in result.data


def test_icc_profile_is_applied_then_dropped() -> None:
    # The pixels are converted to sRGB (what Face assumes); no profile bytes are carried over.
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for profile in (icc, srgb):
        data = encode(noise(), "JPEG", exif=exif_with(gps=True), icc_profile=profile)
        result = validate_image(data)
        assert result.reencoded and "icc_profile" not in opened(result).info
        assert profile[:128] not in result.data


def test_reencoded_output_still_has_to_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "_save", lambda *args, **kwargs: b"x" * (7 * 1024 * 1024))
    assert rejected(encode(noise(), "BMP"), isolate=False).code == "tooLarge"  # in-process, so the patch applies


def test_reencoded_output_below_the_minimum_is_too_small() -> None:
    flat = encode(Image.new("RGB", (120, 120), (90, 90, 90)), "BMP")
    assert rejected(flat, min_bytes=len(flat)).code == "tooSmall"


def test_encoder_failures_are_reported_as_not_an_image(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> bytes:
        raise OSError("encoder exploded")

    monkeypatch.setattr(images, "_save", boom)
    assert rejected(encode(noise(), "BMP"), isolate=False).code == "notAnImage"


def test_repr_does_not_dump_the_bytes() -> None:
    assert "\\x" not in repr(validate_image(encode(noise(), "JPEG")))


# --- the header checks ---------------------------------------------------------------------------

def test_jpeg_header_check() -> None:
    header = images.check_header(encode(noise(), "JPEG", progressive=True))
    assert (header.format, header.width, header.height) == ("JPEG", 160, 120) and 2 <= header.scans <= 12
    assert images.check_header(encode(noise(), "JPEG")).scans == 1
    clean = encode(noise(), "JPEG")
    assert images.check_header(clean + b"\xff\xda" * 1000).scans == 1  # after EOI nothing is decoded
    with pytest.raises(ImageRejected):
        images.check_header(b"\xff\xd8\xff\xe0\x00")  # segment length cut off, no frame
    sof = clean.index(b"\xff\xc0")
    arithmetic = clean[:sof + 1] + b"\xc9" + clean[sof + 2:]
    assert rejected(arithmetic).code == "notAnImage"


def test_png_header_check_counts_chunks() -> None:
    clean = encode(noise(), "PNG")
    assert images.check_header(clean).width == 160
    iend = clean.rindex(b"IEND") - 4
    flooded = clean[:iend] + png_chunk(b"tEXt", b"k\0v") * (images.MAX_SEGMENTS + 1) + clean[iend:]
    assert rejected(flooded).code == "tooCostly"


def test_bmp_and_gif_dimensions_are_read_from_the_header() -> None:
    assert images.check_header(encode(noise(), "BMP")).width == 160
    assert images.check_header(encode(noise(), "GIF")).height == 120
