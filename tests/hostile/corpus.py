"""A corpus of hostile (and a few ordinary) image files, generated at run time, never committed.

Each entry is built from its specification in a fraction of a second and names what it attacks:

* progressive-JPEG scan bombs: a valid 6300x6300 progressive frame followed by 1,000 or 10,000
  empty AC scans (each scan is a handful of bytes, but a decoder walks every block of the frame
  per scan);
* cheap huge PNGs: vertical stripes (every row equals the one above, so the ``Up`` filter turns
  each row into zeros that deflate to almost nothing) in RGB and in 16-bit grayscale;
* decompression bombs: a 1-bit 40,000x40,000 PNG and a 16,000x16,000 GIF, both a few hundred KB;
* header-only lies: huge declared dimensions in a JPEG SOF, a PNG IHDR, a BMP and a GIF with a tiny
  payload; zero dimensions;
* broken files: truncated JPEG/PNG, wrong magic, a zero-byte file, text, random bytes, a PNG
  signature over a JPEG body;
* ordinary controls that must still be accepted: a 4032x3024 camera-sized JPEG, a progressive one,
  a 4096x4096 PNG at the limit.

``build()`` returns ``{name: bytes}``; ``ACCEPTED`` / ``REFUSED`` / ``EITHER`` say what each must become.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator

from PIL import Image

__all__ = ["ACCEPTED", "BUILDERS", "EITHER", "REFUSED", "build", "png_rows", "progressive_scan_bomb"]


# --- JPEG ----------------------------------------------------------------------------------------

class _Bits:
    """Huffman-coded entropy data: bits MSB first, 0xFF stuffed with 0x00, padded with 1 bits."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = self.n = 0

    def zeros(self, count: int) -> None:
        while self.n and count:  # align, then whole zero bytes at once
            self.put(0, 1)
            count -= 1
        self.out += bytes(count // 8)
        self.put(0, count % 8)

    def finish(self) -> bytes:
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def progressive_scan_bomb(width: int = 6300, height: int = 6300, *, ac_scans: int = 1000) -> bytes:
    """A valid grayscale progressive JPEG: one DC scan (every block 0) and ``ac_scans`` AC scans that
    only say "end of band" for every block (EOB runs of up to 32,767 blocks per symbol)."""
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    out = bytearray(b"\xff\xd8")
    out += _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    out += _segment(0xDB, b"\x00" + bytes([1]) * 64)  # 8-bit quantisation table 0, all ones
    out += _segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")  # SOF2, one component
    # DC table 0: one symbol (category 0) with the 1-bit code "0".
    out += _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    # AC table 0: EOBr symbols 0x00, 0x10 .. 0xE0 (run of 2^r + r extra bits), fifteen 4-bit codes.
    eob_symbols = bytes(r << 4 for r in range(15))
    out += _segment(0xC4, b"\x10" + bytes([0, 0, 0, 15] + [0] * 12) + eob_symbols)
    dc = _Bits()
    dc.zeros(blocks)
    out += _segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + dc.finish()  # Ss=0 Se=0 Ah=Al=0
    ac = _Bits()
    left = blocks
    while left:
        run = min(left, 32767)
        r = run.bit_length() - 1
        ac.put(r, 4)  # canonical code of symbol index r is r itself (all codes are 4 bits)
        ac.put(run - (1 << r), r)
        left -= run
    ac_scan = _segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + ac.finish()  # Ss=1 Se=63 Ah=Al=0
    out += ac_scan * ac_scans
    out += b"\xff\xd9"
    return bytes(out)


def jpeg_header_only(width: int, height: int) -> bytes:
    """SOF0 declaring width x height, tables, one scan start and a few bytes of data."""
    small = _pillow((64, 64), "JPEG", mode="RGB")
    i = small.index(b"\xff\xc0")
    return small[:i + 5] + struct.pack(">HH", height, width) + small[i + 9:]


# --- PNG -----------------------------------------------------------------------------------------

def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_rows(width: int, height: int, *, bit_depth: int, color_type: int, first_row: bytes,
             extra_chunks: bytes = b"") -> bytes:
    """A PNG from its first scanline (filter None) and the rest (filter Up: all-zero when repeated)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    z = zlib.compressobj(9)
    parts = [z.compress(b"\x00" + first_row)]
    repeat = b"\x02" + bytes(len(first_row))
    chunk_rows = max(1, (1 << 20) // len(repeat))
    left = height - 1
    while left:
        n = min(left, chunk_rows)
        parts.append(z.compress(repeat * n))
        left -= n
    parts.append(z.flush())
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra_chunks + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))


def striped_png(width: int = 6300, height: int = 6300) -> bytes:
    row = bytes((0 if (x // 4) % 2 else 255) for x in range(width) for _ in range(3))
    return png_rows(width, height, bit_depth=8, color_type=2, first_row=row)


def gray16_png(width: int = 6300, height: int = 6300) -> bytes:
    row = b"".join(struct.pack(">H", (x * 37) & 0xFFFF) for x in range(width))
    return png_rows(width, height, bit_depth=16, color_type=0, first_row=row)


def png_bomb(side: int = 40_000) -> bytes:
    """1-bit grayscale, all zero: 1.6 gigapixels in a few hundred KB."""
    return png_rows(side, side, bit_depth=1, color_type=0, first_row=bytes((side + 7) // 8))


def png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(2048)))
            + _chunk(b"IEND", b""))


# --- GIF / BMP -----------------------------------------------------------------------------------

def gif_bomb(side: int = 16_000) -> bytes:
    """A real GIF whose single frame is side x side of one colour (LZW of a constant: tiny)."""
    image = Image.new("P", (side, 1))
    out = io.BytesIO()
    image.save(out, "GIF")
    data = bytearray(out.getvalue())
    # Patch the logical screen and the image descriptor to claim side x side.
    data[6:10] = struct.pack("<HH", side, side)
    j = data.index(b"\x2c")
    data[j + 5:j + 9] = struct.pack("<HH", side, side)
    return bytes(data) + bytes(2048)


def bmp_header_only(width: int, height: int) -> bytes:
    pixels = bytes(2048)
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + dib + pixels


# --- ordinary files ------------------------------------------------------------------------------

def _pillow(size: tuple[int, int], fmt: str, *, mode: str = "RGB", seed: int = 7, **options: object) -> bytes:
    # A smooth gradient with mild noise: compresses like a photo, not like random bytes.
    w, h = size
    base = Image.linear_gradient("L").resize(size)
    rnd = random.Random(seed)
    noise = Image.frombytes("L", (max(1, w // 8), max(1, h // 8)),
                            rnd.randbytes(max(1, w // 8) * max(1, h // 8))).resize(size)
    image = Image.merge("RGB", (base, noise, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _entries() -> Iterator[tuple[str, Callable[[], bytes]]]:
    yield "jpeg-scan-bomb-1000", lambda: progressive_scan_bomb(ac_scans=1000)
    yield "jpeg-scan-bomb-10000", lambda: progressive_scan_bomb(ac_scans=10000)
    yield "jpeg-scan-bomb-4096-60", lambda: progressive_scan_bomb(4096, 4096, ac_scans=60)
    yield "png-stripes-6300", striped_png
    yield "png-stripes-4096", lambda: striped_png(4096, 4096)
    yield "png-gray16-6300", gray16_png
    yield "png-gray16-4096", lambda: gray16_png(4096, 4096)
    yield "png-bomb-40000", png_bomb
    yield "gif-bomb-16000", gif_bomb
    yield "jpeg-header-65500", lambda: jpeg_header_only(65500, 65500)
    yield "jpeg-header-zero-height", lambda: jpeg_header_only(640, 0)
    yield "png-header-2^31", lambda: png_header_only(2**31 - 1, 2**31 - 1)
    yield "png-header-100000x10", lambda: png_header_only(100_000, 10)
    yield "bmp-header-60000", lambda: bmp_header_only(60_000, -60_000)
    yield "jpeg-truncated", lambda: _truncated(_pillow((800, 600), "JPEG", quality=90))
    yield "png-truncated", lambda: _truncated(_pillow((800, 600), "PNG"))
    yield "png-magic-jpeg-body", lambda: b"\x89PNG\r\n\x1a\n" + _pillow((800, 600), "JPEG")[8:]
    yield "jpeg-magic-text", lambda: b"\xff\xd8\xff\xe0" + b"not a photo at all " * 200
    yield "zero-bytes", lambda: b""
    yield "text-file", lambda: b"hello, this is a text file named photo.jpg\n" * 100
    yield "random-bytes", lambda: random.Random(13).randbytes(200_000)
    yield "ok-jpeg-4032x3024", lambda: _pillow((4032, 3024), "JPEG", quality=85)
    yield "ok-jpeg-progressive-4032x3024", lambda: _pillow((4032, 3024), "JPEG", quality=85, progressive=True)
    yield "ok-jpeg-444-4096", lambda: _pillow((4096, 4096), "JPEG", quality=80, subsampling=0, progressive=True)
    yield "ok-png-2048", lambda: _pillow((2048, 2048), "PNG")
    yield "ok-png-rgba-1024", lambda: _pillow((1024, 1024), "PNG", mode="RGBA")
    yield "ok-bmp-1024", lambda: _pillow((1024, 768), "BMP")
    yield "ok-gif-1024", lambda: _pillow((1024, 768), "GIF")


BUILDERS: dict[str, Callable[[], bytes]] = dict(_entries())
ACCEPTED = frozenset(name for name in BUILDERS if name.startswith("ok-"))
# Inside every limit and cheap once the limits hold: accepting or refusing them are both right.
EITHER = frozenset({"jpeg-scan-bomb-4096-60", "png-stripes-4096", "png-gray16-4096"})
REFUSED = frozenset(BUILDERS) - ACCEPTED - EITHER


def build(names: list[str] | None = None) -> dict[str, bytes]:
    return {name: BUILDERS[name]() for name in (names or list(BUILDERS))}
