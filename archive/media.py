"""What an uploaded file really is, how big it claims to be, and the small copies the archive shows.

Three jobs, kept apart so the upload path can stop as early as possible:

* ``sniff`` looks at the first bytes only. File names and browser-supplied types are never trusted: a
  volunteer's ``scan.jpg`` may be a PDF, and a hostile upload may be an SVG with script in it.
* ``read_header`` parses the image header without decoding pixels and refuses images whose declared size
  would need too much memory to decode (decompression bombs: a few kilobytes declaring 50000 × 50000 pixels).
* ``make_derivatives`` decodes once, as small as the largest rendition allows, and writes the thumbnail and
  preview as JPEG and WebP *without any metadata*: derivatives are public, and EXIF carries GPS positions,
  camera serial numbers and names. ``metadata_markers`` proves that by parsing the encoded bytes.

Pillow's global switches (``Image.MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES``) are never
touched: other code in the same process (and other threads) relies on their defaults. Instead, files are
opened through the format's plugin class directly, which skips Pillow's global bomb check, and our own
``max_pixels`` limit is applied to the parsed header before anything is decoded.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageCms, ImageFile, ImageOps

from archive.errors import ArchiveError, Refusal

log = logging.getLogger(__name__)

ACCEPTED = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heif": "image/heif",
    "avif": "image/avif",
}

# How many leading bytes to pass to ``sniff`` (ingest and ``make_derivatives`` both do). 64 bytes settle every
# accepted format; only the naming of refused markup (SVG behind a long DOCTYPE) gains from more.
SNIFF_BYTES = 512


class MediaError(ArchiveError):
    """No derivatives can be made from this file; the message says why, in English, for the logs."""


# ---------------------------------------------------------------------------------------------------------
# Sniffing
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sniffed:
    format: str | None  # a key of ACCEPTED, or None when we do not accept what the bytes are
    detected: str  # a human name for what the bytes are, for the refusal message


# ISO base media file format (HEIF, AVIF, MP4, ...): the ``ftyp`` box names a major brand and compatible
# brands. An AVIF file usually also lists ``mif1``/``miaf``, so the AVIF brands must win over the HEIF ones.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_VIDEO_BRANDS = {
    b"qt  ": "QuickTime video",
    b"isom": "MP4 video",
    b"iso2": "MP4 video",
    b"mp41": "MP4 video",
    b"mp42": "MP4 video",
    b"avc1": "MP4 video",
    b"M4V ": "MP4 video",
    b"3gp4": "3GP video",
    b"3gp5": "3GP video",
    b"crx ": "Canon CR3 raw",
    b"jp2 ": "JPEG 2000",
    b"jpx ": "JPEG 2000",
}

# Binary signatures that we recognise only to name them in a refusal. Order matters where prefixes overlap.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "PDF"),
    (b"%!PS", "EPS/PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS/PostScript"),  # DOS EPS binary header
    (b"II*\x00", "TIFF"),  # also DNG, NEF, CR2 and most other camera raw files
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),  # raw codestream
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"8BPS", "Photoshop PSD"),
    # Astronomy images, which Pillow opens (and whose GZIP variant was a memory bomb, CVE-2026-40192). The
    # header is printable ASCII, so without this it would be named "Text".
    (b"SIMPLE  =", "FITS"),
    (b"FUJIFILMCCD-RAW", "Fujifilm RAF raw"),
    (b"IIRO", "Olympus ORF raw"),
    (b"IIU\x00", "Panasonic RW2 raw"),
    (b"PK\x03\x04", "ZIP"),
    (b"PK\x05\x06", "ZIP"),
    (b"Rar!\x1a\x07", "RAR"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"\x1f\x8b", "gzip"),
    (b"BM", "BMP"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"qoif", "QOI"),
    (b"\x7fELF", "executable"),
    (b"MZ", "executable"),
)

_TEXT_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def sniff(head: bytes) -> Sniffed:
    """Say what the leading bytes of a file are. Never looks at a name or a client-supplied type.

    Pass at least the first 64 bytes; pass ``SNIFF_BYTES`` so that SVG behind a long prolog is still named.
    Only ``format`` decides acceptance; ``detected`` is for telling the volunteer what they uploaded.
    """
    if not head:
        return Sniffed(None, "empty file")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("jpeg", "JPEG")
    if head.startswith(b"\xff\xd8"):
        return Sniffed(None, "damaged JPEG")  # no marker after the start of image: no decoder reads it
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("png", "PNG")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("webp", "WebP")
    if head[:4] == b"RIFF":
        return Sniffed(None, {b"AVI ": "AVI video", b"WAVE": "WAV audio"}.get(head[8:12], "RIFF"))
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return Sniffed(None, name)
    return Sniffed(None, _sniff_text(head))


def _sniff_ftyp(head: bytes) -> Sniffed:
    box_size = int.from_bytes(head[:4], "big")
    end = min(len(head), box_size) if box_size >= 16 else len(head)
    major = head[8:12]
    brands = {major} | {head[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return Sniffed("avif", "AVIF")
    if brands & _HEIF_BRANDS:
        return Sniffed("heif", "HEIF")
    return Sniffed(None, _VIDEO_BRANDS.get(major, "ISO media file"))


def _sniff_text(head: bytes) -> str:
    """Name markup and text; SVG and HTML matter most because browsers execute script in them."""
    encoding = "utf-8"
    for bom, bom_encoding in _TEXT_BOMS:
        if head.startswith(bom):
            head, encoding = head[len(bom) :], bom_encoding
            break
    if encoding == "utf-8" and len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] and head[3]:
        encoding = "utf-16-be"  # UTF-16 without a byte order mark
    elif encoding == "utf-8" and len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] and head[2]:
        encoding = "utf-16-le"
    if encoding.startswith("utf-16"):
        head = head[: len(head) // 2 * 2]
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        # The head may end in the middle of a multi-byte character. Otherwise try Windows-1252, in which
        # older German text files are written; what is still unprintable then is binary.
        if exc.start >= len(head) - 3:
            text = head[: exc.start].decode(encoding)
        elif encoding == "utf-8":
            text = head.decode("cp1252", errors="replace")
        else:
            return "unknown"
    lowered = text.lstrip().lower()
    if lowered.startswith("<"):
        if "<svg" in lowered and not lowered.startswith(("<!doctype html", "<html")):
            return "SVG"
        if lowered.startswith("<?xml"):
            return "XML"
        return "HTML"
    if lowered.startswith("%!ps"):  # after a BOM or whitespace, which PostScript readers tolerate
        return "EPS/PostScript"
    if lowered.startswith("%pdf-"):
        return "PDF"
    if text and all((ch.isprintable() and ch != "\ufffd") or ch in "\t\r\n\f" for ch in text):
        return "Text"
    return "unknown"


# ---------------------------------------------------------------------------------------------------------
# Opening and header checks
# ---------------------------------------------------------------------------------------------------------


@functools.cache
def ensure_plugins() -> None:
    """Register HEIF once, on first use: importing this module must stay cheap and side-effect free.

    AVIF is built into Pillow 13. ``register_heif_opener`` also lets other code (EXIF reading) open HEIC
    through ``Image.open``.
    """
    import pillow_heif

    pillow_heif.register_heif_opener()


def _opener(fmt: str) -> Callable[..., ImageFile.ImageFile]:
    """The plugin class for a sniffed format. Calling it parses the header and decodes nothing.

    Going through the class rather than ``Image.open`` skips Pillow's global decompression-bomb check (a
    warning above ~89 MP, an error above ~179 MP, both tied to a process-wide setting) so that our own
    ``max_pixels`` limit decides, and it stops a file from being parsed as some other format than sniffed.
    """
    if fmt == "jpeg":
        from PIL.JpegImagePlugin import JpegImageFile

        return JpegImageFile  # not ``jpeg_factory``: an MPO's first frame is the photo, and that is enough
    if fmt == "png":
        from PIL.PngImagePlugin import PngImageFile

        return PngImageFile
    if fmt == "webp":
        from PIL.WebPImagePlugin import WebPImageFile

        return WebPImageFile
    if fmt == "avif":
        from PIL.AvifImagePlugin import AvifImageFile

        return AvifImageFile
    if fmt == "heif":
        ensure_plugins()
        from pillow_heif import HeifImageFile

        return HeifImageFile
    raise ValueError(f"not an accepted format: {fmt!r}")


def _webp_canvas(head: bytes) -> tuple[int, int] | None:
    """Declared size of a WebP, read before Pillow sees the file.

    Pillow's WebP plugin creates the libwebp decoder (which allocates the whole canvas) while opening, and
    raises its own bomb error first, so the size must be known before the plugin class is called.
    """
    chunk = head[12:16]
    data = head[20:]
    if chunk == b"VP8X" and len(data) >= 10:
        return 1 + int.from_bytes(data[4:7], "little"), 1 + int.from_bytes(data[7:10], "little")
    if chunk == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        de_limit = f"{max_pixels:,}".replace(",", ".")
        en_limit = f"{max_pixels:,}"
        raise Refusal(
            "too_many_pixels",
            f"Das Bild ist zu groß: {width} × {height} Pixel. Erlaubt sind höchstens {de_limit} Pixel "
            "(Breite mal Höhe). Bitte verkleinern Sie das Bild und laden Sie es erneut hoch.",
            f"The image is too large: {width} × {height} pixels. At most {en_limit} pixels (width times "
            "height) are allowed. Please make it smaller and upload it again.",
            # 422, not 413: the request is small; what it declares is what we will not decode.
            status=422,
        )


def _unreadable(detail: str) -> Refusal:
    # The detail comes from a parser's exception, which may quote the file (a chunk name, an offset) and span
    # lines: one short line, so that it reads as a remark and cannot start a line of its own in a log.
    detail = " ".join(detail.split())[:160]
    return Refusal(
        "unreadable",
        "Die Bilddatei ist beschädigt oder unvollständig und kann nicht gelesen werden. Bitte laden Sie die "
        f"Originaldatei erneut hoch. ({detail})",
        "The image file is damaged or incomplete and cannot be read. Please upload the original file "
        f"again. ({detail})",
    )


class _PaddedJpeg:
    """A read-only view of a JPEG file that adds an end-of-image marker once, if the file stops early.

    Truncated JPEGs are common (an interrupted copy from a camera card, a crashed phone app) and browsers
    show them with the missing part in a flat colour. The file is the archive's record either way, so a
    partial preview beats none. Pillow can do the same only through ``ImageFile.LOAD_TRUNCATED_IMAGES``,
    a process-wide switch that would also make every other decode in the process silently lenient.
    Corrupt (rather than missing) data still fails to decode.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.padded = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if not data and size != 0 and not self.padded:
            self.padded = True
            return b"\xff\xd9"
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


@contextlib.contextmanager
def _opened(
    path: Path, fmt: str, max_pixels: int, *, pad_truncated: bool = False
) -> Iterator[tuple[ImageFile.ImageFile, _PaddedJpeg | None]]:
    """Open ``path`` as ``fmt`` (header only), enforce ``max_pixels``, and close everything afterwards.

    Yields the image and, with ``pad_truncated`` for a JPEG, the stream that knows whether it was padded.
    """
    opener = _opener(fmt)
    with open(path, "rb") as raw:
        if fmt == "webp":
            canvas = _webp_canvas(raw.read(30))
            if canvas is not None:
                _check_pixels(*canvas, max_pixels)
            raw.seek(0)
        padded = _PaddedJpeg(raw) if fmt == "jpeg" and pad_truncated else None
        try:
            im = opener(padded or raw)  # Pillow needs only read, seek and tell
        except Image.DecompressionBombError as exc:  # the WebP plugin's own check; see _webp_canvas
            raise _unreadable(str(exc)) from exc
        except Exception as exc:
            # Hostile or damaged input makes parsers raise almost anything (SyntaxError, OSError,
            # struct.error, IndexError, ValueError, RuntimeError from libheif ...). All of them mean that
            # we cannot read it.
            raise _unreadable(f"{type(exc).__name__}: {exc}") from exc
        with im:
            _check_pixels(im.width, im.height, max_pixels)
            yield im, padded


def open_header(fp: BinaryIO, fmt: str) -> ImageFile.ImageFile:
    """Parse the header of ``fp`` as the accepted format ``fmt`` and decode nothing; the caller closes it.

    For readers that want Pillow's view of a file (EXIF, IPTC, XMP) without ``Image.open``: its global bomb
    check would refuse a photo that our own, configurable ``max_pixels`` accepts (the default 200 MP is above
    Pillow's ~179 MP error), and it may parse the bytes as another format than sniffed. No pixel limit is
    applied here: nothing is decoded.
    """
    return _opener(fmt)(fp)


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int


def read_header(path: Path, sniffed_format: str, max_pixels: int) -> ImageHeader:
    """Parse the header of an accepted image without decoding a single pixel.

    Raises ``Refusal("too_many_pixels", status=422)`` when width × height exceeds ``max_pixels``, and
    ``Refusal("unreadable")`` when the header cannot be parsed as ``sniffed_format``. Width and height are
    as stored, before any EXIF rotation.
    """
    with _opened(Path(path), sniffed_format, max_pixels) as (im, _):
        return ImageHeader(sniffed_format, im.width, im.height)


# ---------------------------------------------------------------------------------------------------------
# Derivatives
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    name: str
    max_edge: int


SIZES = (Size("thumb", 400), Size("preview", 1600))
FORMATS = {"jpeg": "image/jpeg", "webp": "image/webp"}

# libwebp's ``method`` (0-6) trades encoding time for size. Measured here on 1600 px previews of 12 MP
# phone photos at q80: method 0 ~25-43 ms, 1 ~31-50 ms, 2 ~42-64 ms, 3 and 4 ~110-140 ms. Method 2 is
# 12-23 % smaller than 0 and only 3-7 % larger than 4, so the slow methods buy almost nothing. The WebP
# encode is the largest single cost of make_derivatives; bench/derivatives.py runs pyvips at this effort.
WEBP_METHOD = 2


@dataclass(frozen=True)
class Rendition:
    size: str  # a Size.name
    fmt: str  # a key of FORMATS
    data: bytes
    width: int
    height: int

    @property
    def mime(self) -> str:
        return FORMATS[self.fmt]


def _fit(size: tuple[int, int], max_edge: int) -> tuple[int, int]:
    """Scale ``size`` so its long edge is at most ``max_edge``; never enlarges."""
    width, height = size
    long_edge = max(width, height)
    if long_edge <= max_edge:
        return width, height
    scale = max_edge / long_edge
    return max(1, round(width * scale)), max(1, round(height * scale))


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=32)
def _to_srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from an embedded profile to sRGB, or None when none is needed or possible.

    Cached because photos from one camera share one profile and building a transform costs milliseconds.
    NOCACHE: little-cms keeps a one-pixel cache inside a transform that is not safe to share between the
    threads of a worker; the cache buys nothing for photographs anyway.
    """
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if mode == "RGB" and "srgb" in ImageCms.getProfileDescription(profile).lower():
            return None  # most cameras embed plain sRGB: converting it to itself only costs time
        return ImageCms.buildTransform(
            profile,
            _srgb(),
            mode,
            "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            flags=ImageCms.Flags.NOCACHE | ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken or mismatching profile (an RGB profile in a greyscale file happens) must not cost the
        # volunteer the photo: fall back to treating the pixels as sRGB, which is what browsers do.
        return None


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    transform = _to_srgb_transform(icc, im.mode) if icc and im.mode in ("RGB", "L", "CMYK") else None
    if transform is not None:
        try:
            return ImageCms.applyTransform(im, transform)
        except (ImageCms.PyCMSError, ValueError):
            pass
    return im if im.mode == "RGB" else im.convert("RGB")


def _normalise_mode(im: Image.Image) -> Image.Image:
    """Bring any decoded mode to RGB, L or CMYK (the last two for their ICC profiles), alpha flattened.

    Transparent areas become white: a thumbnail on a dark page must not show the garbage colours that
    transparent pixels often carry, and JPEG has no alpha anyway.
    """
    if im.mode == "I" or im.mode.startswith("I;16"):
        # 16-bit greyscale (PNG scans): scale to 8 bits. ``convert("L")`` would clip everything above 255
        # to white instead. A 16-bit transparent grey value (tRNS) is rare enough to be ignored.
        im = im.convert("I").point(lambda v: v / 256).convert("L")
        im.info.pop("transparency", None)
    if im.mode in ("RGB", "L", "CMYK") and not im.has_transparency_data:
        return im
    if not im.has_transparency_data:
        return im.convert("L" if im.mode == "1" else "RGB")
    grey = im.mode in ("L", "LA", "La")
    with_alpha = im.convert("LA" if grey else "RGBA")
    background = Image.new("L" if grey else "RGB", with_alpha.size, "white")
    background.paste(with_alpha.convert("L" if grey else "RGB"), mask=with_alpha.getchannel("A"))
    return background


def _orient(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (pixels are stored sideways by most cameras held upright)."""
    # Broken EXIF (the corpus has plenty) must not stop the photo; it is then shown as stored.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(im, in_place=True)
    return im


def _encode(im: Image.Image, fmt: str, jpeg_quality: int, webp_quality: int) -> bytes:
    """Encode with no metadata at all: no EXIF, XMP, IPTC, ICC profile, comment or embedded thumbnail.

    Pixels are sRGB by now, which is also what viewers assume for untagged images. ``comment=b""`` matters:
    Pillow copies a source JPEG's COM segment by default. ``info`` is cleared as well so that no plugin
    picks anything up from the source.
    """
    im.info = {}
    buffer = io.BytesIO()
    if fmt == "jpeg":
        im.save(buffer, "JPEG", quality=jpeg_quality, comment=b"", exif=b"", icc_profile=None)
    elif fmt == "webp":
        im.save(buffer, "WEBP", quality=webp_quality, method=WEBP_METHOD, exif=b"", icc_profile=None, xmp=b"")
    else:
        raise ValueError(f"not a derivative format: {fmt!r}")
    return buffer.getvalue()


def make_derivatives(
    path: Path, *, max_pixels: int, jpeg_quality: int = 85, webp_quality: int = 80
) -> list[Rendition]:
    """Make every ``SIZES`` × ``FORMATS`` rendition of the image at ``path``, without metadata.

    The file is decoded once: a JPEG with ``draft`` straight to the smallest DCT scale that still covers
    the preview (a quarter of the pixels of a 12-24 MP photo, or less), then the preview is resized, made
    upright and converted to sRGB, and the smaller sizes are made from the preview. Never enlarges.

    Raises ``MediaError`` whenever no derivatives can be made: not an accepted format, an unreadable or
    too large header (the checks of ``read_header``, which ingest has normally done already), or pixel
    data that cannot be decoded. A JPEG that merely ends early is decoded as far as it goes (see
    ``_PaddedJpeg``) and a warning is logged.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        sniffed = sniff(fh.read(SNIFF_BYTES))
    if sniffed.format is None:
        raise MediaError(f"not an image format we accept ({sniffed.detected})")
    try:
        return _derive(path, sniffed.format, max_pixels, jpeg_quality, webp_quality)
    except Refusal as refusal:
        raise MediaError(refusal.en) from refusal


def _derive(path: Path, fmt: str, max_pixels: int, jpeg_quality: int, webp_quality: int) -> list[Rendition]:
    largest = max(size.max_edge for size in SIZES)
    with _opened(path, fmt, max_pixels, pad_truncated=True) as (source, stream):
        info = dict(source.info)  # EXIF/XMP for the orientation, ICC for the colours
        target = _fit(source.size, largest)
        if fmt == "jpeg" and target != source.size:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale almost for free; ``draft`` picks the smallest scale
            # that is still at least ``target``, so nothing is ever upscaled afterwards.
            source.draft(None, target)
        try:
            source.load()
            image = _normalise_mode(source)
        except Exception as exc:
            raise MediaError(f"the image data cannot be decoded ({type(exc).__name__}: {exc})") from exc
        if stream is not None and stream.padded:
            log.warning("%s is truncated: its derivatives show the missing part in a flat colour", path)

        # Resize first, orient afterwards: transposing the small image is cheaper, and the long edge is
        # the same either way. Then sRGB, and the smaller sizes are made from the preview, not the source.
        preview = _resize(image, target)
        preview.info = info
        preview = _to_srgb(_orient(preview), info.get("icc_profile") or None)
        by_edge = {
            size.max_edge: preview
            if size.max_edge >= largest
            else _resize(preview, _fit(preview.size, size.max_edge))
            for size in SIZES
        }
        renditions = []
        for size in SIZES:
            im = by_edge[size.max_edge]
            for name in FORMATS:
                data = _encode(im, name, jpeg_quality, webp_quality)
                renditions.append(Rendition(size.name, name, data, im.width, im.height))
        return renditions


def _resize(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    if im.size == size:
        return im
    # LANCZOS: the sharpest of Pillow's filters, which is what a preview of a photograph wants. The
    # reducing gap first box-averages by an integer factor when shrinking a lot (a 2× thumbnail from the
    # preview, a big PNG or HEIC that has no draft mode); it is visually indistinguishable and much faster.
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


# ---------------------------------------------------------------------------------------------------------
# Metadata detection
# ---------------------------------------------------------------------------------------------------------


def metadata_markers(data: bytes) -> list[str]:
    """Names of the metadata carried by an encoded JPEG, WebP or PNG; ``[]`` when it carries none.

    Walks the container (JPEG marker segments, RIFF chunks, PNG chunks) rather than searching for byte
    strings, so pixel data that happens to contain ``Exif`` does not count and a segment that does not say
    its name is still caught. Raises ValueError for other formats and for broken structure: a detector
    that answers ``[]`` for what it could not read would prove nothing.
    """
    if data.startswith(b"\xff\xd8"):
        found = _jpeg_markers(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        found = _webp_markers(data)
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        found = _png_markers(data)
    else:
        raise ValueError("metadata_markers reads JPEG, WebP and PNG only")
    return list(dict.fromkeys(found))  # unique, in order of appearance


_JPEG_APP_NAMES = (
    (1, b"Exif\x00", "EXIF"),
    (1, b"http://ns.adobe.com/xap/1.0/\x00", "XMP"),
    (1, b"http://ns.adobe.com/xmp/extension/\x00", "XMP"),
    (2, b"ICC_PROFILE\x00", "ICC"),
    (2, b"MPF\x00", "MPF"),  # multi-picture format: a second, full-size image (depth map, stereo pair)
    (13, b"Photoshop 3.0\x00", "IPTC"),  # Photoshop resource blocks, where IPTC-IIM lives
    (14, b"Adobe", None),  # colour transform flags only: not metadata
)


def _jpeg_markers(data: bytes) -> list[str]:
    found: list[str] = []
    pos = 2
    end = len(data)
    while True:
        # Markers may be preceded by any number of 0xFF fill bytes.
        if pos >= end or data[pos] != 0xFF:
            raise ValueError(f"JPEG: expected a marker at offset {pos}")
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            raise ValueError("JPEG: ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            if data[pos:].strip(b"\x00"):
                found.append("trailing data")  # e.g. a phone's appended preview or depth image
            return found
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart markers and TEM have no length
            continue
        if pos + 2 > end:
            raise ValueError("JPEG: segment length missing")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > end:
            raise ValueError(f"JPEG: segment 0x{marker:02X} runs past the end")
        payload = data[pos + 2 : pos + length]
        pos += length
        if marker == 0xFE:
            found.append("COM")
        elif 0xE0 <= marker <= 0xEF:
            found.extend(_jpeg_app_name(marker - 0xE0, payload))
        elif marker == 0xDA:  # SOS: skip the entropy-coded data to the next real marker
            pos = _skip_entropy_coded(data, pos)


def _jpeg_app_name(n: int, payload: bytes) -> list[str]:
    if n == 0:
        if payload.startswith(b"JFIF\x00"):
            # JFIF may carry an uncompressed thumbnail: X and Y thumbnail sizes at offsets 12 and 13.
            return ["JFIF thumbnail"] if len(payload) >= 14 and payload[12] and payload[13] else []
        if payload.startswith(b"JFXX\x00"):
            return ["JFXX thumbnail"]
    for app, prefix, name in _JPEG_APP_NAMES:
        if app == n and payload.startswith(prefix):
            return [name] if name else []
    return [f"APP{n}"]  # any other application segment: unknown, so assume it says something


def _skip_entropy_coded(data: bytes, pos: int) -> int:
    """Position of the next marker after scan data (0xFF 0x00 is a stuffed byte, RSTn belong to the scan)."""
    end = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= end:
            raise ValueError("JPEG: scan data without an end marker")
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1
            continue
        return pos


def _webp_markers(data: bytes) -> list[str]:
    found: list[str] = []
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if riff_end > len(data):
        raise ValueError("WebP: RIFF size runs past the end")
    if riff_end < len(data) and data[riff_end:].strip(b"\x00"):
        found.append("trailing data")
    pos = 12
    while pos < riff_end:
        if pos + 8 > riff_end:
            raise ValueError("WebP: truncated chunk header")
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + size > riff_end:
            raise ValueError(f"WebP: chunk {fourcc!r} runs past the end")
        name = {b"EXIF": "EXIF", b"XMP ": "XMP", b"ICCP": "ICC"}.get(fourcc)
        if name:
            found.append(name)
        elif fourcc not in (b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"):
            found.append(f"chunk {fourcc.decode('latin-1')}")
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
    return found


_PNG_TEXT_NAMES = {
    b"XML:com.adobe.xmp": "XMP",
    b"Raw profile type exif": "EXIF",  # ImageMagick and exiftool keep EXIF in text chunks
    b"Raw profile type APP1": "EXIF",
    b"Raw profile type iptc": "IPTC",
    b"Raw profile type 8bim": "IPTC",
    b"Raw profile type xmp": "XMP",
    b"Raw profile type icc": "ICC",
}
# Chunks about pixels, colour and animation, which say nothing about who, where or when.
_PNG_HARMLESS = frozenset(
    b"IHDR PLTE IDAT IEND tRNS gAMA cHRM sRGB sBIT bKGD pHYs acTL fcTL fdAT cICP mDCV cLLI".split()
)


def _png_markers(data: bytes) -> list[str]:
    found: list[str] = []
    pos = 8
    end = len(data)
    while pos < end:
        if pos + 8 > end:
            raise ValueError("PNG: truncated chunk header")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if pos + 12 + length > end:
            raise ValueError(f"PNG: chunk {kind!r} runs past the end")
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"eXIf":
            found.append("EXIF")
        elif kind == b"iCCP":
            found.append("ICC")
        elif kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword = body.split(b"\x00", 1)[0]
            found.append(_PNG_TEXT_NAMES.get(keyword, "text"))
        elif kind == b"IEND":
            if data[pos:].strip(b"\x00"):
                found.append("trailing data")
            return found
        elif kind not in _PNG_HARMLESS:
            found.append(f"chunk {kind.decode('latin-1')}")
    raise ValueError("PNG: no IEND chunk")
