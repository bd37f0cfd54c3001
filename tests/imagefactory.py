"""Small test images made by the project's own code, so that a fresh clone can test without the corpus.

Every helper returns the encoded bytes; ``write(tmp_path, name, data)`` puts them in a file. The images are
small (a few hundred pixels) but photo-like (gradients and noise), so encoders behave as they do on photos.

Metadata is put in the way cameras and editors do it: EXIF (with GPS and an orientation), XMP, IPTC in a
Photoshop APP13 segment, a JPEG COM comment and an embedded ICC profile that is *not* sRGB, so that tests
can prove that derivatives carry none of it and that the colours were converted.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import ExifTags, Image, ImageCms, ImageDraw
from PIL.PngImagePlugin import PngInfo

# A recognisable colour for tests of colour conversion: a muted red, well inside both gamuts, that moves by
# ~15 levels per channel between Adobe RGB and sRGB.
WIDE_GAMUT_SAMPLE = (180, 70, 60)

GPS_LATITUDE = ((49, 1), (28, 1), (5212, 100))  # Ludwigshafen am Rhein
GPS_LONGITUDE = ((8, 1), (26, 1), (3480, 100))

XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    b"<dc:creator><rdf:Seq><rdf:li>Erika Musterfrau</rdf:li></rdf:Seq></dc:creator>"
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    b'<?xpacket end="w"?>'
)
COMMENT = b"Familie Musterfrau, Rheinufer"


def write(directory: Path, name: str, data: bytes) -> Path:
    path = Path(directory) / name
    path.write_bytes(data)
    return path


def photo(size: tuple[int, int] = (640, 480), mode: str = "RGB", seed: int = 1) -> Image.Image:
    """A photo-like picture: a diagonal gradient, a few shapes and noise, with a red block top-left.

    The red block marks the stored top-left corner, so orientation tests can see where it went.
    """
    width, height = size
    gradient = Image.linear_gradient("L").resize(size)
    other = gradient.transpose(Image.Transpose.ROTATE_90).resize(size)
    noise = Image.effect_noise(size, 24 + seed % 7)
    im = Image.merge("RGB", (gradient, other, noise))
    draw = ImageDraw.Draw(im)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(40, 160, 220))
    draw.rectangle((0, 0, max(1, width // 8), max(1, height // 8)), fill=(255, 0, 0))
    return im if mode == "RGB" else im.convert(mode)


def solid(size: tuple[int, int], colour: tuple[int, ...], mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


# --------------------------------------------------------------------------------------------------------
# Metadata payloads
# --------------------------------------------------------------------------------------------------------


def exif_bytes(orientation: int = 1, *, gps: bool = True) -> bytes:
    """EXIF as a camera writes it: make, model, time, orientation and (by default) a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Brücken Testkamera"
    exif[ExifTags.Base.Model] = "Modell 1"
    exif[ExifTags.Base.Software] = "imagefactory"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:34:56"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2024:05:01 12:34:56"
    sub[ExifTags.Base.BodySerialNumber] = "SN-0042"
    if gps:
        position = exif.get_ifd(ExifTags.IFD.GPSInfo)
        position[ExifTags.GPS.GPSVersionID] = b"\x02\x03\x00\x00"
        position[ExifTags.GPS.GPSLatitudeRef] = "N"
        position[ExifTags.GPS.GPSLatitude] = tuple(n / d for n, d in GPS_LATITUDE)
        position[ExifTags.GPS.GPSLongitudeRef] = "E"
        position[ExifTags.GPS.GPSLongitude] = tuple(n / d for n, d in GPS_LONGITUDE)
    return exif.tobytes()


def _iptc_dataset(record: int, dataset: int, value: bytes) -> bytes:
    return struct.pack(">BBBH", 0x1C, record, dataset, len(value)) + value


def iptc_app13() -> bytes:
    """A Photoshop APP13 segment holding IPTC-IIM (resource 0x0404): caption, by-line, city, keywords."""
    iim = b"".join(
        (
            _iptc_dataset(1, 90, b"\x1b%G"),  # coded character set: UTF-8
            _iptc_dataset(2, 120, "Brücke über den Rhein".encode()),
            _iptc_dataset(2, 80, b"Erika Musterfrau"),
            _iptc_dataset(2, 90, b"Ludwigshafen"),
            _iptc_dataset(2, 25, b"Rhein"),
        )
    )
    if len(iim) % 2:
        iim += b"\x00"  # resource data is padded to an even length
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iim)) + iim
    payload = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def wide_gamut_icc(description: str = "Bruecken test wide-gamut RGB (Adobe RGB 1998 primaries)") -> bytes:
    """A matrix/TRC ICC v2 display profile with Adobe RGB (1998) primaries and gamma 2.2.

    Built byte by byte because ImageCms can only create sRGB, LAB and XYZ profiles; little-cms reads it
    like any profile from an editor. The description deliberately does not say "sRGB".
    """
    ascii_description = description.encode("ascii", "replace") + b"\x00"
    desc = (
        b"desc\x00\x00\x00\x00"
        + struct.pack(">I", len(ascii_description))
        + ascii_description
        + b"\x00" * 8  # no Unicode description
        + b"\x00\x00\x00"  # no ScriptCode description
        + b"\x00" * 67
    )
    cprt = b"text\x00\x00\x00\x00" + b"No copyright, test data\x00"

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \x00\x00\x00\x00" + _s15f16(x) + _s15f16(y) + _s15f16(z)

    trc = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, 563) + b"\x00\x00"  # gamma 563/256 = 2.199
    tags = [
        (b"desc", desc),
        (b"cprt", cprt),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        # Adobe RGB (1998) primaries, Bradford-adapted to D50 as the ICC connection space requires.
        (b"rXYZ", xyz(0.60974, 0.31111, 0.01947)),
        (b"gXYZ", xyz(0.20528, 0.62567, 0.06087)),
        (b"bXYZ", xyz(0.14919, 0.06322, 0.74457)),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table = struct.pack(">I", len(tags))
    body = b""
    for signature, data in tags:
        padded = data + b"\x00" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += padded
    size = 128 + table_size + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + bytes((2, 0x10, 0, 0))  # version 2.1
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\x00" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15f16(0.9642)
        + _s15f16(1.0)
        + _s15f16(0.8249)
        + b"\x00" * 4  # creator
        + b"\x00" * 16  # profile ID
        + b"\x00" * 28
    )
    assert len(header) == 128
    return header + table + body


def to_profile(im: Image.Image, icc: bytes) -> Image.Image:
    """Re-express sRGB pixels in the given profile, as a camera set to that colour space would store them."""
    source = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    target = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.profileToProfile(im, source, target, outputMode="RGB")


# --------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------


def jpeg(
    im: Image.Image | None = None,
    *,
    quality: int = 90,
    exif: bytes | None = None,
    xmp: bytes | None = None,
    iptc: bool = False,
    comment: bytes | None = None,
    icc: bytes | None = None,
    progressive: bool = False,
) -> bytes:
    im = photo() if im is None else im
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": quality, "progressive": progressive}
    if exif is not None:
        options["exif"] = exif
    if xmp is not None:
        options["xmp"] = xmp
    if comment is not None:
        options["comment"] = comment
    if icc is not None:
        options["icc_profile"] = icc
    if iptc:
        options["extra"] = iptc_app13()
    im.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def jpeg_with_everything(size: tuple[int, int] = (640, 480), orientation: int = 1) -> bytes:
    """A JPEG stuffed like a real one: EXIF with GPS, XMP, IPTC, a comment and a non-sRGB ICC profile."""
    icc = wide_gamut_icc()
    return jpeg(
        to_profile(photo(size), icc),
        exif=exif_bytes(orientation),
        xmp=XMP,
        iptc=True,
        comment=COMMENT,
        icc=icc,
    )


def png(
    im: Image.Image | None = None, *, metadata: bool = False, icc: bytes | None = None, bits16: bool = False
) -> bytes:
    """A PNG; ``metadata`` adds eXIf, XMP in iTXt and a tEXt comment. ``bits16`` makes 16-bit greyscale."""
    im = photo() if im is None else im
    if bits16:
        grey = im.convert("L")
        im = Image.new("I;16", grey.size)
        im.frombytes(b"".join(bytes((v, v)) for v in grey.tobytes()), "raw", "I;16B")
    info = PngInfo()
    options: dict[str, object] = {}
    if metadata:
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        info.add_text("Comment", COMMENT.decode())
        options["exif"] = exif_bytes()
    if icc is not None:
        options["icc_profile"] = icc
    buffer = io.BytesIO()
    im.save(buffer, "PNG", pnginfo=info, **options)
    return buffer.getvalue()


def transparent_png(size: tuple[int, int] = (300, 200)) -> bytes:
    """RGBA: the left half fully transparent (its colour channels black, as editors often leave them)."""
    im = photo(size).convert("RGBA")
    alpha = Image.new("L", size, 255)
    ImageDraw.Draw(alpha).rectangle((0, 0, size[0] // 2 - 1, size[1]), fill=0)
    im.paste((0, 0, 0, 255), (0, 0, size[0] // 2, size[1]))
    im.putalpha(alpha)
    return png(im)


def palette_png(size: tuple[int, int] = (200, 100), transparent: bool = True) -> bytes:
    im = photo(size).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    buffer = io.BytesIO()
    if transparent:
        im.save(buffer, "PNG", transparency=0)
    else:
        im.save(buffer, "PNG")
    return buffer.getvalue()


def webp(im: Image.Image | None = None, *, metadata: bool = False, lossless: bool = False) -> bytes:
    im = photo() if im is None else im
    options: dict[str, object] = {"quality": 85, "lossless": lossless}
    if metadata:
        options.update(exif=exif_bytes(), xmp=XMP, icc_profile=wide_gamut_icc())
    buffer = io.BytesIO()
    im.save(buffer, "WEBP", **options)
    return buffer.getvalue()


def heic(im: Image.Image | None = None) -> bytes:
    import pillow_heif

    im = photo() if im is None else im
    buffer = io.BytesIO()
    pillow_heif.from_pillow(im).save(buffer, quality=80)
    return buffer.getvalue()


def avif(im: Image.Image | None = None) -> bytes:
    im = photo() if im is None else im
    buffer = io.BytesIO()
    im.save(buffer, "AVIF", quality=70, speed=10)
    return buffer.getvalue()


def other_format(im: Image.Image | None, pillow_format: str) -> bytes:
    """TIFF, GIF, JPEG 2000, BMP ... as Pillow writes them: formats we must recognise and refuse."""
    im = photo((64, 48)) if im is None else im
    buffer = io.BytesIO()
    im.save(buffer, pillow_format)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------------
# Hostile and broken files
# --------------------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A decompression bomb: under 100 bytes whose header declares ``width`` × ``height`` RGB pixels.

    The IDAT holds a few compressed bytes; decoding would need width × height × 3 bytes of memory
    (7.5 GB for the default) before noticing the data is missing.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def bomb_jpeg(width: int = 50_000, height: int = 50_000) -> bytes:
    """A JPEG header declaring ``width`` × ``height`` (baseline SOF0, three components) and no image data."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return (
        b"\xff\xd8"
        + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
        + b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos
        + b"\x00" * 16
        + b"\xff\xd9"
    )  # fmt: skip


def bomb_webp(width: int = 16_383, height: int = 16_383) -> bytes:
    """A WebP whose VP8X header declares the largest canvas WebP allows (268 MP)."""
    vp8x = bytes((0, 0, 0, 0)) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    # The bitstream of a real 1 × 1 lossless WebP follows, so the file is otherwise well formed.
    bitstream = webp(Image.new("RGB", (1, 1)), lossless=True)[12:]
    chunks = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x + bitstream
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def truncated_jpeg(fraction: float = 0.6, size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG cut off part-way through its scan data, like an interrupted upload."""
    data = jpeg(photo(size))
    return data[: int(len(data) * fraction)]
