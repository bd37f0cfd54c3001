"""The files the load benchmark uploads: real camera JPEGs made unique, and files the archive must refuse.

Uniqueness keeps the camera's bytes: a JPEG comment segment (COM, ``FF FE``) with a unique text goes in just
before the image data (the SOS marker), after every EXIF/ICC/XMP segment, so the photo decodes and reads as
before and only its SHA-256 changes.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
# Photos big enough to be real camera files, small enough that a 2-CPU machine processes a minute of uploads.
MAX_CORPUS_BYTES = 4 * 1024 * 1024
MAX_CORPUS_PIXELS = 24_000_000
SOS, COM = 0xDA, 0xFE


@dataclass(frozen=True)
class Upload:
    """One file to send and what the archive must make of it."""

    name: str
    data: bytes
    valid: bool  # a photo: archived (201) or a duplicate (200); invalid: refused with a 4xx
    kind: str  # "photo", "duplicate", "twin", "not-a-photo", "empty", "bomb", "truncated"


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment carrying ``text`` before its first SOS marker."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    position = 2
    while position + 4 <= len(jpeg):
        if jpeg[position] != 0xFF:
            raise ValueError(f"no marker at byte {position}")
        marker = jpeg[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == SOS:
            payload = text.encode()
            segment = bytes((0xFF, COM)) + struct.pack(">H", len(payload) + 2) + payload
            return jpeg[:position] + segment + jpeg[position:]
        (length,) = struct.unpack(">H", jpeg[position + 2:position + 4])
        position += 2 + length
    raise ValueError("no SOS marker")


def corpus_photos(corpus: Path = CORPUS) -> list[tuple[str, bytes]]:
    """Camera JPEGs from the shared corpus that decode cleanly (the broken ones are other tests' business);
    generated photos when the corpus is not there (a fresh clone)."""
    found: list[tuple[str, bytes]] = []
    folders = [corpus / "cameras" / "jpg", corpus / "exif-py"]
    for path in sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*")
                       if p.suffix.lower() in (".jpg", ".jpeg") and "ImageTestSuite" not in p.parts
                       and "corrupt" not in p.name.lower()):
        data = path.read_bytes()
        if not 20_000 <= len(data) <= MAX_CORPUS_BYTES:
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format != "JPEG" or image.width * image.height > MAX_CORPUS_PIXELS:
                    continue
                image.load()
            with_comment(data, "probe")
        except Exception:  # any file Pillow or the marker walk cannot read is left out
            continue
        found.append((path.name, data))
    return found or generated_photos()


def generated_photos(count: int = 8) -> list[tuple[str, bytes]]:
    photos = []
    for index in range(count):
        image = Image.effect_noise((1600 + 64 * index, 1200), 40 + index * 5).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=88)
        photos.append((f"generated-{index}.jpg", buffer.getvalue()))
    return photos


def small_photo(color: tuple[int, int, int], size: tuple[int, int] = (800, 600)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def png_bomb(side: int = 20_000) -> bytes:
    """A real decompression bomb: a 1-bit PNG of side × side pixels (400 Mpx) that is a few dozen KB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


class InvalidFiles:
    """The files the archive must refuse, in turn: not a photo, empty, a bomb, a JPEG cut off after its header."""

    def __init__(self, sample_jpeg: bytes) -> None:
        self.kinds = [
            ("not-a-photo", "notes.jpg", b"Dies ist kein Foto, sondern ein Text.\n" * 40),
            ("empty", "empty.jpg", b""),
            ("bomb", "bomb.png", png_bomb()),
            ("truncated", "cut.jpg", sample_jpeg[:300]),
        ]
        self.turn = 0

    def next(self) -> Upload:
        kind, name, data = self.kinds[self.turn % len(self.kinds)]
        self.turn += 1
        return Upload(name, data, valid=False, kind=kind)
