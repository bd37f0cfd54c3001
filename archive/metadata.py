"""Read descriptive metadata (EXIF, IPTC, XMP) from photo files, without decoding any pixels.

Every uploaded file is untrusted: :func:`read_metadata` never raises because of bad metadata. Whatever cannot
be read is left empty and the reason is recorded in :attr:`PhotoMetadata.warnings`.

Sources and their order:

* EXIF through exifread (``details=False``, under a budget of file operations so a crafted file cannot keep it
  busy), with Pillow's ``getexif()`` filling whatever exifread could not read (HEIC written by pillow-heif,
  WebP, PNG, files exifread chokes on).
* IPTC-IIM through :func:`PIL.IptcImagePlugin.getiptcinfo` (JPEG APP13 and TIFF).
* XMP from the raw packet Pillow exposes, parsed with defusedxml (DTDs and entities refused).

``orientation`` is the value that :func:`PIL.ImageOps.exif_transpose` would act on: for HEIC/HEIF pillow-heif
already rotates while decoding and reports 1, even when the raw EXIF says otherwise.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["PhotoMetadata", "read_metadata"]

CAPTION_MAX = 2000
FIELD_MAX = 200
CAMERA_MAX = 100  # Photo.camera_make / camera_model are String(100)
KEYWORDS_MAX = 200
XMP_MAX_BYTES = 4 * 1024 * 1024
# Budgets of file operations (read + seek calls), so a crafted file cannot keep a worker busy. exifread needs
# at most a few thousand for real files (3,460 in the corpus); an IFD claiming 60,000 entries is refused after
# ~0.1 s. Pillow needs a few hundred, but scans a JPEG whose markers are broken one byte per read() call.
EXIFREAD_MAX_FILE_OPERATIONS = 50_000
PILLOW_MAX_FILE_OPERATIONS = 200_000
EXIFREAD_MAX_READ_BYTES = 16 * 1024 * 1024  # one read() never asks for more (a crafted count can say 4 GB)

# The archive's own formats are opened through their plugin class (``media.open_header``, as sniffed). Other
# files (read_metadata on what ingest would refuse) go through Image.open limited to these formats (names must be
# keys of Image.OPEN: MPO is opened by "JPEG"); everything else is refused, so fewer parsers see untrusted bytes.
_PILLOW_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "AVIF", "HEIF", "GIF", "BMP")


@dataclass
class PhotoMetadata:
    taken_at: datetime | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    exposure_time: str | None = None
    f_number: float | None = None
    focal_length_mm: float | None = None
    iso: int | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    orientation: int | None = None
    title: str | None = None
    caption: str | None = None
    keywords: list[str] = field(default_factory=list)
    creator: str | None = None
    copyright: str | None = None
    warnings: list[str] = field(default_factory=list)

    def camera_summary(self) -> str | None:
        """One line for display, e.g. ``Canon EOS 30D · 50 mm · f/2.8 · 1/250 s · ISO 400``."""
        parts: list[str] = []
        camera = _camera_display_name(self.camera_make, self.camera_model)
        if camera:
            parts.append(camera)
        if self.focal_length_mm:
            parts.append(f"{_fmt_number(self.focal_length_mm, 2)} mm")
        if self.f_number:
            parts.append(f"f/{_fmt_number(self.f_number, 1)}")
        if self.exposure_time:
            parts.append(f"{self.exposure_time} s")
        if self.iso:
            parts.append(f"ISO {self.iso}")
        return " · ".join(parts) or None


def read_metadata(path: Path) -> PhotoMetadata:
    """Read what the file says about itself. Never raises for bad or hostile metadata."""
    meta = PhotoMetadata()
    warnings = meta.warnings
    path = Path(path)

    exif_a: dict[str, Any] = {}
    try:
        fh = path.open("rb")
    except OSError as exc:
        warnings.append(f"File unreadable: {_exc_name(exc)}")
        return meta
    with fh:
        try:
            exif_a = _exif_via_exifread(fh)
        except Exception as exc:
            warnings.append(f"EXIF unreadable: {_exc_name(exc)}")
        pil = _read_with_pillow(fh, warnings, exif_wanted=not exif_a)

    exif: dict[str, Any] = dict(pil.exif)
    exif.update({k: v for k, v in exif_a.items() if not _is_empty(v)})
    iptc: dict[str, list[str]] = {}
    with _guard(warnings, "IPTC unreadable"):
        iptc = _iptc_fields(pil.iptc)
    xmp: dict[str, list[str]] = {}
    if pil.xmp is not None:
        with _guard(warnings, "XMP unreadable"):
            xmp = _parse_xmp(pil.xmp)

    # Interpreting odd values (wrong types, absurd numbers) must not cost the other fields either.
    with _guard(warnings, "Camera settings unreadable"):
        _fill_camera(meta, exif)
    with _guard(warnings, "Orientation unreadable"):
        meta.orientation = _orientation(pil.orientation if pil.exif_ok else exif.get("Orientation"))
    with _guard(warnings, "Date unreadable"):
        meta.taken_at = _taken_at(exif) or _xmp_date(xmp)
    with _guard(warnings, "GPS position unreadable"):
        _fill_gps(meta, exif)
    with _guard(warnings, "Descriptions unreadable"):
        _fill_descriptive(meta, exif, iptc, xmp)
    return meta


# --------------------------------------------------------------------------------------------------- EXIF


# exifread names (without the "Image "/"EXIF " prefix) and Pillow tag ids of what we use.
_IFD0_TAGS = {
    0x010F: "Make",
    0x0110: "Model",
    0x0112: "Orientation",
    0x010E: "ImageDescription",
    0x013B: "Artist",
    0x8298: "Copyright",
    0x0132: "DateTime",
    0x9010: "OffsetTime",
    0x9290: "SubSecTime",
}
_EXIF_IFD_TAGS = {
    0x829A: "ExposureTime",
    0x829D: "FNumber",
    0x920A: "FocalLength",
    0x8827: "ISOSpeedRatings",
    0x8832: "RecommendedExposureIndex",
    0x8833: "ISOSpeed",
    0x9003: "DateTimeOriginal",
    0x9004: "DateTimeDigitized",
    0x9011: "OffsetTimeOriginal",
    0x9012: "OffsetTimeDigitized",
    0x9291: "SubSecTimeOriginal",
    0x9292: "SubSecTimeDigitized",
    0xA433: "LensMake",
    0xA434: "LensModel",
}
_GPS_TAGS = {1: "GPSLatitudeRef", 2: "GPSLatitude", 3: "GPSLongitudeRef", 4: "GPSLongitude"}


class _BudgetedReader:
    """Read-only file wrapper that gives up after ``budget`` read/seek calls (and caps single reads)."""

    def __init__(self, fh: BinaryIO, budget: int, max_read: int | None = None) -> None:
        self._fh = fh
        self._left = budget
        self._max_read = max_read

    def _spend(self) -> None:
        self._left -= 1
        if self._left < 0:
            raise _BudgetExceededError("too many file operations for metadata")

    def read(self, size: int | None = -1) -> bytes:
        self._spend()
        if self._max_read is not None and (size is None or size == -1 or size > self._max_read):
            size = self._max_read
        return self._fh.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._spend()
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


class _BudgetExceededError(RuntimeError):
    pass


def _exif_via_exifread(fh: BinaryIO) -> dict[str, Any]:
    import exifread  # local import: exifread is only needed here

    tags = exifread.process_file(
        _BudgetedReader(fh, EXIFREAD_MAX_FILE_OPERATIONS, EXIFREAD_MAX_READ_BYTES),  # type: ignore[arg-type]
        details=False,
        extract_thumbnail=False,
    )
    out: dict[str, Any] = {}
    for name in (*_IFD0_TAGS.values(), *_EXIF_IFD_TAGS.values()):
        # Tags are sometimes written to the "wrong" IFD: accept both.
        for prefix in ("EXIF", "Image"):
            tag = tags.get(f"{prefix} {name}")
            if tag is not None and not _is_empty(getattr(tag, "values", None)):
                out[name] = tag.values
                break
    for name in _GPS_TAGS.values():
        tag = tags.get(f"GPS {name}")
        if tag is not None and not _is_empty(getattr(tag, "values", None)):
            out[name] = tag.values
    return out


@dataclass
class _PillowResult:
    exif: dict[str, Any] = field(default_factory=dict)
    exif_ok: bool = False
    orientation: Any = None
    iptc: dict[tuple[int, int], Any] = field(default_factory=dict)
    xmp: bytes | None = None


def _read_with_pillow(fh: BinaryIO, warnings: list[str], *, exif_wanted: bool) -> _PillowResult:
    """Open the header only (Image.open is lazy: no pixels are decoded) and collect EXIF, IPTC and XMP."""
    from PIL import Image

    from .media import SNIFF_BYTES, ensure_plugins, open_header, sniff

    ensure_plugins()
    res = _PillowResult()
    try:
        fh.seek(0)
        sniffed = sniff(fh.read(SNIFF_BYTES))
        fh.seek(0)
        budgeted = _BudgetedReader(fh, PILLOW_MAX_FILE_OPERATIONS)
        if sniffed.format is not None:
            # The archive's formats through their plugin class: Image.open's global decompression-bomb check
            # would refuse photos that the archive's own pixel limit accepts, and nothing is decoded here.
            im = open_header(budgeted, sniffed.format)  # type: ignore[arg-type]
        else:
            im = Image.open(budgeted, formats=_PILLOW_FORMATS)  # type: ignore[arg-type]
    except Exception as exc:
        warnings.append(f"Image header unreadable: {_exc_name(exc)}")
        return res
    try:
        try:
            res.exif, res.orientation = _exif_via_pillow(im)
            res.exif_ok = True
        except Exception as exc:
            if exif_wanted:
                warnings.append(f"EXIF unreadable (Pillow): {_exc_name(exc)}")
        try:
            res.iptc = _iptc_via_pillow(im)
        except Exception as exc:
            warnings.append(f"IPTC unreadable: {_exc_name(exc)}")
        try:
            res.xmp = _xmp_packet(im)
        except Exception as exc:
            warnings.append(f"XMP unreadable: {_exc_name(exc)}")
    finally:
        with contextlib.suppress(Exception):  # closing a half-parsed file must not mask the result
            im.close()
    return res


def _exif_via_pillow(im: Any) -> tuple[dict[str, Any], Any]:
    exif = _header_exif(im)
    out: dict[str, Any] = {}
    for tag, name in _IFD0_TAGS.items():
        if tag in exif:
            out[name] = _pillow_value(exif[tag])
    # A broken sub-IFD pointer must not cost what IFD0 already gave.
    sub: Any = {}
    with contextlib.suppress(Exception):
        sub = exif.get_ifd(0x8769)
    for tag, name in _EXIF_IFD_TAGS.items():
        if tag in sub:
            out[name] = _pillow_value(sub[tag])
        elif tag in exif:  # written to IFD0 by some software
            out[name] = _pillow_value(exif[tag])
    gps: Any = {}
    with contextlib.suppress(Exception):
        gps = exif.get_ifd(0x8825)
    for tag, name in _GPS_TAGS.items():
        if tag in gps:
            out[name] = _pillow_value(gps[tag])
    return {k: v for k, v in out.items() if not _is_empty(v)}, exif.get(0x0112)


def _header_exif(im: Any) -> Any:
    """``im.getexif()`` without decoding: for a PNG without an eXIf chunk before the pixel data, Pillow's
    ``getexif`` decodes the whole image to look for one after it (hundreds of megabytes for a big scan, and
    the derivatives decode it again anyway). EXIF placed after the pixels is rare enough to go without."""
    from PIL import Image

    if im.format == "PNG" and "exif" not in im.info:
        return Image.Exif()
    return im.getexif()


def _pillow_value(value: Any) -> Any:
    # Pillow decodes EXIF ASCII as latin-1: get the original bytes back so UTF-8 text decodes correctly.
    if isinstance(value, str):
        return value.encode("latin-1", "replace")
    return value


def _iptc_via_pillow(im: Any) -> dict[tuple[int, int], Any]:
    from PIL import IptcImagePlugin

    info = IptcImagePlugin.getiptcinfo(im)
    return dict(info) if info else {}


def _xmp_packet(im: Any) -> bytes | None:
    packet = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if not packet:
        return None
    if isinstance(packet, str):
        packet = packet.encode("utf-8", "replace")
    return bytes(packet)


def _fill_camera(meta: PhotoMetadata, exif: dict[str, Any]) -> None:
    meta.camera_make = _exif_text(exif.get("Make"), limit=CAMERA_MAX)
    meta.camera_model = _exif_text(exif.get("Model"), limit=CAMERA_MAX)
    lens_model = _exif_text(exif.get("LensModel"))
    if lens_model and re.fullmatch(r"[\s\-.0,/fmF]*", lens_model):  # "----", "0.0 mm f/0.0"
        lens_model = None
    lens_make = _exif_text(exif.get("LensMake"))
    if lens_model and lens_make and lens_make.casefold() not in lens_model.casefold():
        lens_model = _clean_text(f"{lens_make} {lens_model}", limit=FIELD_MAX)
    meta.lens = lens_model

    exposure = _to_fraction(exif.get("ExposureTime"))
    meta.exposure_time = _fmt_exposure(exposure) if exposure is not None else None

    f_number = _to_float(exif.get("FNumber"))
    if f_number is not None and 0.3 <= f_number <= 1000:
        meta.f_number = round(f_number, 2)
    focal = _to_float(exif.get("FocalLength"))
    if focal is not None and 0 < focal <= 10_000:
        meta.focal_length_mm = round(focal, 2)

    for name in ("ISOSpeedRatings", "RecommendedExposureIndex", "ISOSpeed"):
        iso = _to_int(exif.get(name))
        if iso is not None and 0 < iso < 10_000_000 and iso != 65535:
            meta.iso = iso
            break


def _orientation(value: Any) -> int | None:
    number = _to_int(value)
    return number if number is not None and 1 <= number <= 8 else None


# ---------------------------------------------------------------------------------------------- dates

_DATE_RE = re.compile(
    r"\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})"
    r"(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_OFFSET_RE = re.compile(r"\s*(Z|([+-])(\d{2}):?(\d{2}))\s*$")


def _taken_at(exif: dict[str, Any]) -> datetime | None:
    for date_key, offset_key, subsec_key in (
        ("DateTimeOriginal", "OffsetTimeOriginal", "SubSecTimeOriginal"),
        ("DateTimeDigitized", "OffsetTimeDigitized", "SubSecTimeDigitized"),
        ("DateTime", "OffsetTime", "SubSecTime"),
    ):
        text = _exif_text(exif.get(date_key))
        if not text:
            continue
        parsed = _parse_datetime(text)
        if parsed is None:
            continue
        subsec = _exif_text(exif.get(subsec_key))
        if subsec and subsec.isdigit() and parsed.microsecond == 0:
            parsed = parsed.replace(microsecond=int(subsec[:6].ljust(6, "0")))
        offset = _parse_offset(_exif_text(exif.get(offset_key)))
        if offset is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=offset)
        return parsed
    return None


def _parse_datetime(text: str) -> datetime | None:
    match = _DATE_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        value = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
    except ValueError:  # "0000:00:00 00:00:00", month 13, ...
        return None
    if not 1800 <= value.year <= 2200:
        return None
    tz = _parse_offset(offset)
    return value.replace(tzinfo=tz) if tz is not None else value


def _parse_offset(text: str | None) -> timezone | None:
    if not text:
        return None
    match = _OFFSET_RE.match(text)
    if not match:
        return None
    if match.group(1) == "Z":
        return UTC
    hours, minutes = int(match.group(3)), int(match.group(4))
    if hours > 18 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if match.group(2) == "-" else delta)


def _xmp_date(xmp: dict[str, list[str]]) -> datetime | None:
    for value in xmp.get("date", []):
        parsed = _parse_datetime(value)
        if parsed is not None:
            return parsed
    return None


# ------------------------------------------------------------------------------------------------ GPS


def _fill_gps(meta: PhotoMetadata, exif: dict[str, Any]) -> None:
    if "GPSLatitude" not in exif and "GPSLongitude" not in exif:
        return
    lat = _gps_coordinate(exif.get("GPSLatitude"), exif.get("GPSLatitudeRef"), "NS", 90)
    lon = _gps_coordinate(exif.get("GPSLongitude"), exif.get("GPSLongitudeRef"), "EW", 180)
    if lat is None or lon is None:
        meta.warnings.append("GPS position ignored: impossible or incomplete values")
        return
    if lat == 0 and lon == 0:
        meta.warnings.append("GPS position ignored: 0,0 (no fix)")
        return
    meta.gps_lat, meta.gps_lon = lat, lon


def _gps_coordinate(value: Any, ref: Any, refs: str, limit: int) -> float | None:
    if value is None:
        return None
    parts = list(value) if isinstance(value, (list, tuple)) else [value]
    if not 1 <= len(parts) <= 3:
        return None
    converted = [_to_float(p) for p in parts]
    numbers = [n for n in converted if n is not None and n >= 0]
    if len(numbers) != len(converted):
        return None
    degrees, minutes, seconds = (*numbers, 0.0, 0.0)[:3]
    if minutes >= 60 or seconds >= 60:
        return None
    decimal = degrees + minutes / 60 + seconds / 3600
    if decimal > limit:
        return None
    ref_text = (_exif_text(ref) or "").strip().upper()[:1]
    if ref_text and ref_text not in refs:
        return None
    if ref_text == refs[1]:
        decimal = -decimal
    return round(decimal, 7)


# ------------------------------------------------------------------------------------ numbers & display


def _to_fraction(value: Any) -> Fraction | None:
    value = _first(value)
    if value is None or isinstance(value, (str, bytes, bool)):
        return None
    try:
        if isinstance(value, int):
            return Fraction(value)
        if isinstance(value, float):
            return Fraction(value).limit_denominator(1_000_000) if math.isfinite(value) else None
        numerator, denominator = value.numerator, value.denominator
        if not denominator or (isinstance(numerator, float) and not math.isfinite(numerator)):
            return None
        if isinstance(numerator, float) or isinstance(denominator, float):
            return Fraction(numerator / denominator).limit_denominator(1_000_000)
        return Fraction(int(numerator), int(denominator))
    except (AttributeError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None


def _to_float(value: Any) -> float | None:
    fraction = _to_fraction(value)
    if fraction is None:
        return None
    try:
        number = float(fraction)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _to_int(value: Any) -> int | None:
    value = _first(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _to_float(value)
    return int(number) if number is not None and number.is_integer() else None


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _fmt_exposure(value: Fraction) -> str | None:
    if value <= 0 or value > 24 * 3600:
        return None
    if value >= 1:
        return _fmt_number(float(value), 1)
    if value.numerator == 1:
        return f"1/{value.denominator}"
    inverse = 1 / float(value)
    if value >= Fraction(1, 4) and abs(inverse - round(inverse)) > 0.05:
        return _fmt_number(float(value), 1)  # 0.3, 0.6 ...
    return f"1/{round(inverse)}"


def _fmt_number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_CORPORATE_WORDS = frozenset(
    {"corporation", "corp", "co", "ltd", "limited", "company", "inc", "imaging", "optical", "electric"}
    | {"computer", "techwin", "global", "systems", "ab", "gmbh", "ag", "llc", "sa", "s.a", "plc"}
)


def _short_make(make: str) -> str:
    words = make.split()
    while len(words) > 1 and all(
        part.strip(".,()").casefold() in _CORPORATE_WORDS or not part.strip(".,()")
        for part in re.split(r"[,]+", words[-1])
    ):
        words.pop()
    return " ".join(words).rstrip(" ,.")


def _camera_display_name(make: str | None, model: str | None) -> str | None:
    if not model:
        return _short_make(make) if make else None
    if not make:
        return model
    short = _short_make(make)
    model_words = {w.strip("<>()[],").casefold() for w in model.split()}
    make_words = {w.strip("<>()[],").casefold() for w in short.split()}
    if model.casefold().startswith(short.casefold()) or make_words & model_words:
        return model  # "Canon" + "Canon EOS 30D", "NIKON CORPORATION" + "NIKON D40"
    return f"{short} {model}"


# -------------------------------------------------------------------------------------------- text


_BIDI_AND_BOM = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"))


def _cp1252_byte(byte: int) -> str:
    try:
        return bytes((byte,)).decode("cp1252")
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined: as Latin-1 (control characters)
        return chr(byte)


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each byte that is not UTF-8 is read as Windows-1252."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(map(_cp1252_byte, error.object[error.start : error.end])), error.end


codecs.register_error("archive-cp1252-fallback", _cp1252_fallback)


def _decode(raw: bytes) -> str:
    """Text from a file: UTF-8, with any byte that is not UTF-8 read as Windows-1252.

    Byte by byte rather than all or nothing: programs append UTF-8 to what an old camera wrote in Windows-1252
    (and hostile files mix on purpose), and one stray byte must not turn every umlaut of the rest into mojibake.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode("utf-8", errors="archive-cp1252-fallback")


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, int) and 0 <= v <= 255 for v in value):
            value = bytes(value)  # text stored as BYTE/UNDEFINED
        elif value and isinstance(value[0], (str, bytes)):
            value = value[0]
        else:
            return None
    if isinstance(value, (bytes, bytearray)):
        return _decode(bytes(value))
    if isinstance(value, str):
        return value
    return None


def _exif_text(value: Any, *, multiline: bool = False, limit: int = FIELD_MAX) -> str | None:
    text = _as_text(value)
    if text is None:
        return None
    text = text.split("\x00", 1)[0]  # EXIF strings end at the first NUL; garbage may follow
    return _clean_text(text, multiline=multiline, limit=limit)


def _clean_text(text: str, *, multiline: bool = False, limit: int = FIELD_MAX) -> str | None:
    text = unicodedata.normalize("NFC", text).translate(_BIDI_AND_BOM)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if not multiline:
        text = text.replace("\n", " ")
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) != "Cc")
    lines = [re.sub(r"[ \u00a0]{2,}", " ", line).strip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if len(text) > limit:
        text = text[:limit].rstrip()
    return text or None


_PLACEHOLDERS = frozenset(
    {
        "unknown",
        "untitled",
        "default",
        "none",
        "null",
        "n/a",
        "image",
        "picture",
        "photo",
        "title",
        "description",
        "caption",
        "copyright",
        "camera owner",
        "owner",
        "user",
        "picasa",
        "exif_jpeg_picture",
        "exif_jpeg_422",
        "exif jpeg",
        "jpeg",
        "lead technologies inc. v1.01",
    }
)
# Text cameras write on their own: "OLYMPUS DIGITAL CAMERA", "SONY DSC", "KODAK Digital Still Camera",
# file names such as "DSC00006", "COPYRIGHT, 2007".
_CAMERA_JUNK_RE = re.compile(
    r"(?:[\w.,-]+\s+){0,3}(?:digital\s+(?:still\s+)?camera|dsc|camera\s+pictures?)"
    r"|(?:dsc[nf]?|img|imag|pict|dcp|cimg|sam|dji|p)[_-]?\d+(?:\.jpe?g)?"
    r"|(?:copyright|\(c\)|©)[\s,.:]*(?:\d{4})?"
    r"|[\W_]*",
    re.IGNORECASE,
)


def _meaningful(text: str | None, camera_words: Iterable[str | None] = (), *, model: str | None = None) -> str | None:
    """``text`` unless it is a placeholder a camera or program wrote on its own.

    With ``model``, short text that mentions the camera model is also dropped: cameras fill Copyright/Artist
    with defaults such as "(C) by RDC-5300 User" or "KODAK DC240 ZOOM DIGITAL CAMERA".
    """
    if not text:
        return None
    folded = " ".join(text.casefold().split())
    if folded in _PLACEHOLDERS or _CAMERA_JUNK_RE.fullmatch(folded):
        return None
    for word in camera_words:
        if word and folded == " ".join(word.casefold().split()):
            return None  # the camera's make or model echoed into a text field
    if model and len(model) >= 4 and len(folded) <= 60 and " ".join(model.casefold().split()) in folded:
        return None
    return text


# --------------------------------------------------------------------------------------------- IPTC


def _iptc_fields(iptc: dict[tuple[int, int], Any]) -> dict[str, list[str]]:
    def values(dataset: int, *, multiline: bool = False, limit: int = FIELD_MAX) -> list[str]:
        raw = iptc.get((2, dataset))
        if raw is None:
            return []
        items = raw if isinstance(raw, list) else [raw]
        out: list[str] = []
        for item in items[:KEYWORDS_MAX]:
            if isinstance(item, (bytes, bytearray)):
                text = _clean_text(_decode(bytes(item)), multiline=multiline, limit=limit)
                if text:
                    out.append(text)
        return out

    return {
        "title": values(5),
        "caption": values(120, multiline=True, limit=CAPTION_MAX),
        "keywords": values(25),
        "creator": values(80),
        "copyright": values(116),
    }


# ---------------------------------------------------------------------------------------------- XMP

_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xml": "http://www.w3.org/XML/1998/namespace",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}
_RDF = f"{{{_NS['rdf']}}}"
_XML_LANG = f"{{{_NS['xml']}}}lang"
_XMP_PROPERTIES: dict[str, list[tuple[str, str]]] = {
    "title": [("dc", "title")],
    "description": [("dc", "description")],
    "subject": [("dc", "subject")],
    "creator": [("dc", "creator")],
    "rights": [("dc", "rights")],
    "date": [("exif", "DateTimeOriginal"), ("photoshop", "DateCreated"), ("xmp", "CreateDate")],
}


def _parse_xmp(packet: bytes) -> dict[str, list[str]]:
    """Parse an XMP packet with defusedxml: a DTD (and so any entity, internal or external) is refused."""
    from defusedxml import ElementTree

    if len(packet) > XMP_MAX_BYTES:
        raise ValueError("XMP packet too large")
    packet = packet.strip(b"\x00 \t\r\n")
    try:
        root = ElementTree.fromstring(packet, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ElementTree.ParseError:
        # Trailing junk after the packet is common: retry with just the <x:xmpmeta> element.
        start = packet.find(b"<x:xmpmeta")
        end = packet.rfind(b"</x:xmpmeta>")
        if start < 0 or end < 0:
            raise
        root = ElementTree.fromstring(
            packet[start : end + len(b"</x:xmpmeta>")],
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )

    found: dict[str, list[str]] = {key: [] for key in _XMP_PROPERTIES}
    for description in root.iter(f"{_RDF}Description"):
        for key, properties in _XMP_PROPERTIES.items():
            for prefix, local in properties:
                qname = f"{{{_NS[prefix]}}}{local}"
                attribute = description.get(qname)
                if attribute is not None:
                    found[key].append(attribute)
                for element in description.findall(qname):
                    found[key].extend(_xmp_element_values(element))
    return found


def _xmp_element_values(element: Any) -> Iterator[str]:
    for container in ("Alt", "Bag", "Seq"):
        node = element.find(f"{_RDF}{container}")
        if node is None:
            continue
        items = node.findall(f"{_RDF}li")
        if container == "Alt":
            default = [li for li in items if li.get(_XML_LANG, "").casefold() == "x-default"]
            items = (default or items)[:1]
        for li in items:
            if li.text:
                yield li.text
        return
    if element.text and element.text.strip():
        yield element.text
        return
    value = element.find(f"{_RDF}Description/{_RDF}value")  # rdf:parseType-less structured value
    if value is not None and value.text:
        yield value.text


# ------------------------------------------------------------------------------------------ combine


def _fill_descriptive(
    meta: PhotoMetadata, exif: dict[str, Any], iptc: dict[str, list[str]], xmp: dict[str, list[str]]
) -> None:
    camera_words = (meta.camera_make, meta.camera_model)

    def xmp_values(key: str, *, multiline: bool = False, limit: int = FIELD_MAX) -> list[str]:
        cleaned = (_clean_text(v, multiline=multiline, limit=limit) for v in xmp.get(key, []))
        return [v for v in cleaned if v]

    def pick(*candidates: list[str] | str | None, model: str | None = None) -> str | None:
        for candidate in candidates:
            items = candidate if isinstance(candidate, list) else [candidate]
            for item in items:
                if (text := _meaningful(item, camera_words, model=model)) is not None:
                    return text
        return None

    def joined(items: list[str]) -> str | None:
        items = [i for i in items if _meaningful(i, camera_words, model=meta.camera_model)]
        return _clean_text(", ".join(_dedupe(items)), limit=FIELD_MAX) if items else None

    meta.title = pick(iptc.get("title"), xmp_values("title"))
    meta.caption = pick(
        iptc.get("caption"),
        xmp_values("description", multiline=True, limit=CAPTION_MAX),
        _exif_text(exif.get("ImageDescription"), multiline=True, limit=CAPTION_MAX),
    )
    meta.creator = (
        joined(iptc.get("creator", []))
        or joined(xmp_values("creator"))
        or pick(_exif_text(exif.get("Artist")), model=meta.camera_model)
    )
    rights = (iptc.get("copyright"), xmp_values("rights"), _exif_text(exif.get("Copyright")))
    meta.copyright = pick(*rights, model=meta.camera_model)
    meta.keywords = _dedupe([*iptc.get("keywords", []), *xmp_values("subject")])[:KEYWORDS_MAX]


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, bytes)):
        return not value.strip(b"\x00 " if isinstance(value, bytes) else "\x00 ")
    if isinstance(value, (list, tuple)):
        return len(value) == 0
    return False


@contextlib.contextmanager
def _guard(warnings: list[str], what: str) -> Iterator[None]:
    """Turn any exception in the block into the warning "<what>: <exception class>"."""
    try:
        yield
    except Exception as exc:
        warnings.append(f"{what}: {_exc_name(exc)}")


def _exc_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__.split(".")[0]
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
