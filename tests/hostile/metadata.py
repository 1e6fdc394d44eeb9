"""Photos with a marker string planted in every metadata slot JPEG and PNG allow.

JPEG: JFIF thumbnail (APP0), JFXX JPEG thumbnail (APP0), EXIF ImageDescription and the EXIF IFD1
thumbnail (APP1), XMP (APP1), IPTC caption in a Photoshop IRB (APP13), ICC (APP2: text where a profile
should be), Adobe (APP14, bytes past its fields), other APPn (APP3, APP12, APP15), COM, and data after EOI.
PNG: tEXt, zTXt, iTXt (plain and compressed), eXIf, iCCP, a private ancillary chunk and data after IEND.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

__all__ = ["MARKER", "jpeg_with_marker_everywhere", "png_with_marker_everywhere"]

MARKER = b"MARKER-alice@example.com-GPS-47.6062N"


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _tiny_jpeg_with_comment() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, "JPEG", comment=MARKER)
    return out.getvalue()


def _exif() -> bytes:
    """Little-endian TIFF: IFD0 with ImageDescription, IFD1 pointing at a JPEG thumbnail."""
    description = MARKER + b"\x00"
    thumbnail = _tiny_jpeg_with_comment()
    ifd0 = 8
    ifd0_size = 2 + 12 + 4
    ifd1 = ifd0 + ifd0_size
    ifd1_size = 2 + 2 * 12 + 4
    desc_at = ifd1 + ifd1_size
    thumb_at = desc_at + len(description)
    tiff = b"II*\x00" + struct.pack("<I", ifd0)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x010E, 2, len(description), desc_at) + struct.pack("<I", ifd1)
    tiff += struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, thumb_at)
    tiff += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0)
    return tiff + description + thumbnail


def jpeg_segments() -> list[bytes]:
    thumb_pixels = MARKER + b"\x00" * (-len(MARKER) % 3)
    jfif_thumb = b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01" + bytes([len(thumb_pixels) // 3, 1]) + thumb_pixels
    xmp = (b"http://ns.adobe.com/xap/1.0/\x00<?xpacket begin=''?><x:xmpmeta xmlns:x='adobe:ns:meta/'>"
           b"<rdf:RDF><rdf:Description dc:creator='" + MARKER + b"'/></rdf:RDF></x:xmpmeta><?xpacket end='w'?>")
    iptc = b"\x1c\x02\x78" + struct.pack(">H", len(MARKER)) + MARKER
    irb = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00" * (len(iptc) % 2)
    return [
        _segment(0xE0, jfif_thumb),
        _segment(0xE0, b"JFXX\x00\x10" + _tiny_jpeg_with_comment()),
        _segment(0xE1, b"Exif\x00\x00" + _exif()),
        _segment(0xE1, xmp),
        _segment(0xED, b"Photoshop 3.0\x00" + irb),
        _segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + b"not a profile: " + MARKER),
        _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01" + MARKER),
        _segment(0xE3, b"META\x00" + MARKER),
        _segment(0xEC, b"Ducky\x00" + MARKER),
        _segment(0xEF, MARKER),
        _segment(0xFE, MARKER),
    ]


def jpeg_with_marker_everywhere(base: bytes) -> bytes:
    """``base`` (a JPEG) with every segment above inserted after SOI, and the marker appended after EOI."""
    assert base[:2] == b"\xff\xd8"
    return base[:2] + b"".join(jpeg_segments()) + base[2:] + MARKER


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_marker_everywhere(base: bytes) -> bytes:
    """``base`` (a PNG) with text, EXIF, ICC and private chunks after IHDR, and the marker after IEND."""
    assert base[12:16] == b"IHDR"
    ihdr_end = 8 + 12 + 13
    chunks = [
        _chunk(b"tEXt", b"Comment\x00" + MARKER),
        _chunk(b"zTXt", b"Author\x00\x00" + zlib.compress(MARKER)),
        _chunk(b"iTXt", b"Description\x00\x00\x00en\x00Description\x00" + MARKER),
        _chunk(b"iTXt", b"Title\x00\x01\x00en\x00Title\x00" + zlib.compress(MARKER)),
        _chunk(b"eXIf", _exif()),
        _chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(b"not a profile: " + MARKER)),
        _chunk(b"prVt", MARKER),
    ]
    return base[:ihdr_end] + b"".join(chunks) + base[ihdr_end:] + MARKER


def compressed_markers() -> list[bytes]:
    """How the marker looks inside the zTXt/iTXt/iCCP chunks (zlib), to search stored bytes for these too."""
    return [zlib.compress(MARKER), zlib.compress(b"not a profile: " + MARKER)]
