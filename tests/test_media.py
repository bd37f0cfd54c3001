"""archive.media: sniffing, header checks against decompression bombs, clean derivatives.

Most tests use images made by tests/imagefactory.py; the corpus tests run the real camera files from
../shared/corpus (the ``corpus`` fixture fails, never skips, when it is missing).
"""

from __future__ import annotations

import io
import logging
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageFile

from archive import media
from archive.errors import Refusal
from archive.media import (
    ACCEPTED,
    FORMATS,
    SIZES,
    MediaError,
    Rendition,
    make_derivatives,
    metadata_markers,
    read_header,
    sniff,
)
from tests import imagefactory as factory

MAX_PIXELS = 50_000_000
HEAD = 64  # what ingest passes to sniff


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _decode(rendition: Rendition) -> Image.Image:
    im = Image.open(io.BytesIO(rendition.data))
    im.load()
    return im


def _by_key(renditions: list[Rendition]) -> dict[tuple[str, str], Rendition]:
    return {(r.size, r.fmt): r for r in renditions}


def _close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------------------------------------
# sniff
# --------------------------------------------------------------------------------------------------------

ACCEPTED_SAMPLES = {
    "jpeg": factory.jpeg,
    "png": factory.png,
    "webp": factory.webp,
    "heif": factory.heic,
    "avif": factory.avif,
}


@pytest.mark.parametrize("fmt", sorted(ACCEPTED_SAMPLES))
def test_sniff_recognises_every_accepted_format(fmt: str) -> None:
    sniffed = sniff(ACCEPTED_SAMPLES[fmt]()[:HEAD])
    assert sniffed.format == fmt
    assert sniffed.format in ACCEPTED
    assert sniffed.detected


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x00meta"


@pytest.mark.parametrize(
    ("head", "fmt", "detected"),
    [
        (_ftyp(b"heic", b"mif1", b"heic"), "heif", "HEIF"),
        (_ftyp(b"heix", b"mif1"), "heif", "HEIF"),
        (_ftyp(b"mif1", b"mif1", b"heic"), "heif", "HEIF"),
        (_ftyp(b"msf1", b"msf1", b"hevc"), "heif", "HEIF"),
        (_ftyp(b"avif", b"mif1", b"miaf"), "avif", "AVIF"),
        (_ftyp(b"mif1", b"mif1", b"avif", b"miaf"), "avif", "AVIF"),  # AVIF brands win over HEIF ones
        (_ftyp(b"avis", b"msf1", b"avis"), "avif", "AVIF"),
        (_ftyp(b"isom", b"isom", b"mp41"), None, "MP4 video"),
        (_ftyp(b"qt  "), None, "QuickTime video"),
    ],
)
def test_sniff_tells_heif_from_avif_by_brands(head: bytes, fmt: str | None, detected: str) -> None:
    assert sniff(head[:HEAD]) == media.Sniffed(fmt, detected)


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'
PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", factory.jpeg())
    return buffer.getvalue()


REFUSED = {
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
    "svg": (SVG, "SVG"),
    "svg with prolog": (PROLOG + SVG, "SVG"),
    "svg with whitespace": (b"\n\n   \t" + PROLOG + SVG, "SVG"),
    "svg with BOM": (b"\xef\xbb\xbf" + PROLOG + SVG, "SVG"),
    "svg with BOM and whitespace, no prolog": (b"\xef\xbb\xbf \r\n" + SVG, "SVG"),
    "svg in UTF-16": (("\ufeff" + SVG.decode()).encode("utf-16-le"), "SVG"),
    "svg after a comment": (b"<!-- made by hand -->\n" + SVG, "SVG"),
    "svg with doctype": (b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN">' + SVG, "SVG"),
    "tiff": (factory.other_format(None, "TIFF"), "TIFF"),
    "big-endian tiff": (b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 32, "TIFF"),
    "gif": (factory.other_format(None, "GIF"), "GIF"),
    "jpeg 2000": (factory.other_format(None, "JPEG2000"), "JPEG 2000"),
    "jpeg 2000 codestream": (b"\xff\x4f\xff\x51\x00\x2f\x00\x00" + b"\x00" * 32, "JPEG 2000"),
    "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n", "EPS/PostScript"),
    "dos eps": (b"\xc5\xd0\xd3\xc6\x20\x00\x00\x00" + b"\x00" * 24, "EPS/PostScript"),
    "html": (
        b"<!DOCTYPE html>\n<html><head><title>x</title></head><body><img src=x onerror=alert(1)>",
        "HTML",
    ),
    "html without doctype": (b"  <html><body>hello</body></html>", "HTML"),
    "zip": (_zip(), "ZIP"),
    "text": ("Liebe Grüße aus Ludwigshafen, hier kommt das Foto vom Rheinufer!\n".encode(), "Text"),
    "text in Windows-1252": ("Grüße vom Rheinufer, Straßenfest 1987\r\n".encode("cp1252"), "Text"),
    "empty": (b"", "empty file"),
    "bmp": (factory.other_format(None, "BMP"), "BMP"),
    "photoshop": (b"8BPS\x00\x01" + b"\x00" * 30, "Photoshop PSD"),
    "jpeg xl": (b"\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00\x00\x14ftypjxl ", "JPEG XL"),
    "damaged jpeg": (b"\xff\xd8\xfe\xe0\x00\x10JFIF\x00", "damaged JPEG"),
    "binary noise": (bytes(range(256))[::7] * 3, "unknown"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_sniff_names_what_it_refuses(name: str) -> None:
    data, detected = REFUSED[name]
    assert sniff(data[:HEAD]) == media.Sniffed(None, detected)


def test_sniff_reads_bytes_not_names(tmp_path: Path) -> None:
    """A text file called photo.jpg is text; a JPEG called notes.txt is a JPEG."""
    text = factory.write(tmp_path, "photo.jpg", b"Dies ist kein Foto, sondern eine Notiz.\n")
    photo = factory.write(tmp_path, "notes.txt", factory.jpeg())
    assert sniff(text.read_bytes()[:HEAD]) == media.Sniffed(None, "Text")
    assert sniff(photo.read_bytes()[:HEAD]).format == "jpeg"


# --------------------------------------------------------------------------------------------------------
# read_header
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(ACCEPTED_SAMPLES))
def test_read_header_of_every_accepted_format(tmp_path: Path, fmt: str) -> None:
    path = factory.write(tmp_path, f"sample.{fmt}", ACCEPTED_SAMPLES[fmt]())
    assert read_header(path, fmt, MAX_PIXELS) == media.ImageHeader(fmt, 640, 480)


BOMBS = {
    "png": (factory.bomb_png, "50000 × 50000"),
    "jpeg": (factory.bomb_jpeg, "50000 × 50000"),
    "webp": (factory.bomb_webp, "16383 × 16383"),
}


@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_read_header_refuses_a_decompression_bomb_fast_and_without_memory(tmp_path: Path, fmt: str) -> None:
    make, dimensions = BOMBS[fmt]
    path = factory.write(tmp_path, f"bomb.{fmt}", make())
    assert path.stat().st_size < 200
    assert sniff(path.read_bytes()[:HEAD]).format == fmt
    peak_before = _peak_rss_mb()
    started = time.perf_counter()
    with pytest.raises(Refusal) as caught:
        read_header(path, fmt, MAX_PIXELS)
    assert time.perf_counter() - started < 1.0
    assert _peak_rss_mb() - peak_before < 50  # decoding would need gigabytes
    refusal = caught.value
    assert refusal.code == "too_many_pixels"
    assert refusal.status == 422
    assert f"{dimensions} Pixel" in refusal.de and "50.000.000" in refusal.de
    assert f"{dimensions} pixels" in refusal.en and "50,000,000" in refusal.en


@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_make_derivatives_never_decodes_a_bomb(tmp_path: Path, fmt: str) -> None:
    path = factory.write(tmp_path, f"bomb.{fmt}", BOMBS[fmt][0]())
    peak_before = _peak_rss_mb()
    started = time.perf_counter()
    with pytest.raises(MediaError, match="too large"):
        make_derivatives(path, max_pixels=MAX_PIXELS)
    assert time.perf_counter() - started < 1.0
    assert _peak_rss_mb() - peak_before < 50


def test_the_pixel_limit_is_ours_not_pillows(tmp_path: Path) -> None:
    """Our limit decides in both directions, and Pillow's global switches are left alone.

    A 20000 × 10000 header is over Pillow's own bomb warning (~89 MP), which pytest turns into an error:
    read_header must neither warn nor refuse it when the archive allows 250 MP.
    """
    limit_before = Image.MAX_IMAGE_PIXELS
    big = factory.write(tmp_path, "big.png", factory.bomb_png(20_000, 10_000))
    assert read_header(big, "png", 250_000_000) == media.ImageHeader("png", 20_000, 10_000)
    small = factory.write(tmp_path, "small.jpg", factory.jpeg())
    assert read_header(small, "jpeg", 640 * 480).width == 640
    with pytest.raises(Refusal, match="640 × 480"):
        read_header(small, "jpeg", 640 * 480 - 1)
    assert limit_before == Image.MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("cut before the frame header", factory.jpeg()[:40], "jpeg"),
        ("a PNG that says it is a JPEG", factory.png(), "jpeg"),
        ("a broken IHDR", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00", "png"),
        ("a HEIF with nothing after ftyp", _ftyp(b"heic", b"mif1"), "heif"),
        ("an AVIF with nothing after ftyp", _ftyp(b"avif", b"mif1"), "avif"),
        ("a WebP without chunks", b"RIFF\x04\x00\x00\x00WEBP", "webp"),
    ],
)
def test_read_header_refuses_what_it_cannot_parse(tmp_path: Path, name: str, data: bytes, fmt: str) -> None:
    path = factory.write(tmp_path, "broken", data)
    with pytest.raises(Refusal) as caught:
        read_header(path, fmt, MAX_PIXELS)
    assert caught.value.code == "unreadable", name
    assert caught.value.de and caught.value.en


def test_plugins_are_registered_lazily_not_at_import() -> None:
    code = (
        "from PIL import Image\n"
        "import archive.media as m\n"
        "assert 'HEIF' not in Image.OPEN, 'HEIF registered at import'\n"
        "m.ensure_plugins()\n"
        "assert 'HEIF' in Image.OPEN\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


# --------------------------------------------------------------------------------------------------------
# make_derivatives
# --------------------------------------------------------------------------------------------------------


def test_every_size_and_format_with_the_right_dimensions(tmp_path: Path) -> None:
    path = factory.write(tmp_path, "big.jpg", factory.jpeg(factory.photo((3000, 2000))))
    renditions = make_derivatives(path, max_pixels=MAX_PIXELS)
    assert [(r.size, r.fmt) for r in renditions] == [(s.name, f) for s in SIZES for f in FORMATS]
    expected = {"thumb": (400, 267), "preview": (1600, 1067)}
    pillow_names = {"jpeg": "JPEG", "webp": "WEBP"}
    for rendition in renditions:
        im = _decode(rendition)
        assert (rendition.width, rendition.height) == im.size == expected[rendition.size]
        assert im.format == pillow_names[rendition.fmt]
        assert im.mode == "RGB"
        assert rendition.mime == FORMATS[rendition.fmt]


@pytest.mark.parametrize("fmt", sorted(ACCEPTED_SAMPLES))
def test_derivatives_from_every_accepted_format(tmp_path: Path, fmt: str) -> None:
    path = factory.write(tmp_path, "photo", ACCEPTED_SAMPLES[fmt]())
    renditions = _by_key(make_derivatives(path, max_pixels=MAX_PIXELS))
    assert (renditions["thumb", "jpeg"].width, renditions["thumb", "jpeg"].height) == (400, 300)
    assert (renditions["preview", "webp"].width, renditions["preview", "webp"].height) == (640, 480)
    # The red block in the top-left corner survives every decoder.
    assert _close(_decode(renditions["preview", "jpeg"]).getpixel((10, 10)), (255, 0, 0), 40)


def test_small_images_are_never_enlarged(tmp_path: Path) -> None:
    path = factory.write(tmp_path, "small.jpg", factory.jpeg(factory.photo((300, 200))))
    for rendition in make_derivatives(path, max_pixels=MAX_PIXELS):
        assert (rendition.width, rendition.height) == (300, 200)
        assert _decode(rendition).size == (300, 200)


def test_an_image_between_the_sizes(tmp_path: Path) -> None:
    path = factory.write(tmp_path, "mid.png", factory.png(factory.photo((1000, 1200))))
    renditions = _by_key(make_derivatives(path, max_pixels=MAX_PIXELS))
    assert (renditions["preview", "jpeg"].width, renditions["preview", "jpeg"].height) == (1000, 1200)
    assert (renditions["thumb", "jpeg"].width, renditions["thumb", "jpeg"].height) == (333, 400)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """Stored landscape with orientation 6 ("rotate 90° clockwise") is shown portrait, block top-right."""
    data = factory.jpeg(factory.photo((800, 600)), exif=factory.exif_bytes(orientation=6))
    path = factory.write(tmp_path, "rotated.jpg", data)
    for rendition in make_derivatives(path, max_pixels=MAX_PIXELS):
        im = _decode(rendition).convert("RGB")
        assert im.height > im.width
        assert _close(im.getpixel((im.width - 5, 5)), (255, 0, 0), 60)
        assert not _close(im.getpixel((5, 5)), (255, 0, 0), 60)


def test_orientation_of_the_corpus_files(corpus: Path) -> None:
    """exif-py's orientation set: every landscape_N shows landscape and every portrait_N portrait."""
    folder = corpus / "exif-py" / "jpg" / "orientation"
    files = sorted(folder.glob("*.jpg"))
    assert len(files) == 16, f"expected the 16 orientation files in {folder}"
    for path in files:
        with Image.open(path) as original:
            orientation = original.getexif().get(0x0112, 1)
        thumb = make_derivatives(path, max_pixels=MAX_PIXELS)[0]
        if path.stem.startswith("landscape"):
            assert thumb.width > thumb.height, f"{path.name} (orientation {orientation})"
        else:
            assert thumb.height > thumb.width, f"{path.name} (orientation {orientation})"


def test_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    path = factory.write(tmp_path, "alpha.png", factory.transparent_png((300, 200)))
    for rendition in make_derivatives(path, max_pixels=MAX_PIXELS):
        im = _decode(rendition)
        assert im.mode == "RGB"
        assert min(im.getpixel((40, 100))) >= 245  # transparent black became white
        assert min(im.getpixel((260, 190))) < 245


def test_palette_with_transparency_is_flattened(tmp_path: Path) -> None:
    path = factory.write(tmp_path, "palette.png", factory.palette_png())
    for rendition in make_derivatives(path, max_pixels=MAX_PIXELS):
        assert _decode(rendition).mode == "RGB"


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    eight = factory.write(tmp_path, "grey8.png", factory.png(factory.photo().convert("L")))
    sixteen = factory.write(tmp_path, "grey16.png", factory.png(bits16=True))
    with Image.open(sixteen) as im:
        assert im.mode.startswith("I")
    expected = _decode(make_derivatives(eight, max_pixels=MAX_PIXELS)[0]).convert("L")
    got = _decode(make_derivatives(sixteen, max_pixels=MAX_PIXELS)[0]).convert("L")
    for xy in ((50, 50), (200, 150), (350, 250)):
        assert abs(got.getpixel(xy) - expected.getpixel(xy)) <= 6  # type: ignore[operator]


def test_a_wide_gamut_profile_is_converted_to_srgb_and_dropped(tmp_path: Path) -> None:
    icc = factory.wide_gamut_icc()
    data = factory.jpeg(factory.solid((800, 600), factory.WIDE_GAMUT_SAMPLE), icc=icc, quality=95)
    path = factory.write(tmp_path, "adobe.jpg", data)
    srgb = ImageCms.createProfile("sRGB")
    wide = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    sample = factory.solid((1, 1), factory.WIDE_GAMUT_SAMPLE)
    expected = ImageCms.profileToProfile(sample, wide, srgb).getpixel((0, 0))
    assert not _close(expected, factory.WIDE_GAMUT_SAMPLE, 8), "the test colour must move visibly"
    for rendition in make_derivatives(path, max_pixels=MAX_PIXELS):
        im = _decode(rendition)
        assert "icc_profile" not in im.info
        assert _close(im.getpixel((im.width // 2, im.height // 2)), expected, 4), rendition


def test_an_srgb_profile_leaves_the_colours_alone(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = factory.jpeg(factory.solid((400, 300), factory.WIDE_GAMUT_SAMPLE), icc=srgb, quality=95)
    path = factory.write(tmp_path, "srgb.jpg", data)
    thumb = _decode(make_derivatives(path, max_pixels=MAX_PIXELS)[0])
    assert _close(thumb.getpixel((200, 150)), factory.WIDE_GAMUT_SAMPLE, 3)


def test_cmyk_becomes_rgb(tmp_path: Path) -> None:
    colour = (40, 160, 220)
    path = factory.write(
        tmp_path, "cmyk.jpg", factory.jpeg(factory.solid((200, 100), colour).convert("CMYK"))
    )
    for rendition in make_derivatives(path, max_pixels=MAX_PIXELS):
        im = _decode(rendition)
        assert im.mode == "RGB"
        assert _close(im.getpixel((100, 50)), colour, 12)


def test_a_truncated_jpeg_gives_partial_derivatives(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The missing part shows as a flat colour, as in a browser, and Pillow's global switch stays off."""
    path = factory.write(tmp_path, "cut.jpg", factory.truncated_jpeg(0.6))
    assert read_header(path, "jpeg", MAX_PIXELS) == media.ImageHeader("jpeg", 640, 480)
    with caplog.at_level(logging.WARNING, logger="archive.media"):
        renditions = make_derivatives(path, max_pixels=MAX_PIXELS)
    assert "truncated" in caplog.text
    preview = _decode(_by_key(renditions)["preview", "jpeg"]).convert("L")
    assert (preview.width, preview.height) == (640, 480)
    top, bottom = preview.crop((0, 20, 640, 60)).getextrema(), preview.crop((0, 440, 640, 480)).getextrema()
    assert top[1] - top[0] > 40  # real picture
    assert bottom[1] - bottom[0] < 12  # filled in
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(OSError, match="truncated"), Image.open(path) as im:
        im.load()  # everyone else in the process still gets the strict default


def test_undecodable_files_raise_media_error(tmp_path: Path, corpus: Path) -> None:
    half_png = factory.write(tmp_path, "half.png", factory.png()[:20_000])
    with pytest.raises(MediaError, match="cannot be decoded"):
        make_derivatives(half_png, max_pixels=MAX_PIXELS)
    broken = corpus / "cameras" / "jpg" / "ImageTestSuite" / "3ba6af611cc5467cfdbd5566561b8478.jpg"
    with pytest.raises(MediaError, match="cannot be decoded"):
        make_derivatives(broken, max_pixels=MAX_PIXELS)
    pdf = factory.write(tmp_path, "document.jpg", REFUSED["pdf"][0])
    with pytest.raises(MediaError, match="PDF"):
        make_derivatives(pdf, max_pixels=MAX_PIXELS)
    header_only = factory.write(tmp_path, "header.jpg", factory.jpeg()[:40])
    with pytest.raises(MediaError):
        make_derivatives(header_only, max_pixels=MAX_PIXELS)


# --------------------------------------------------------------------------------------------------------
# metadata_markers
# --------------------------------------------------------------------------------------------------------


def test_metadata_markers_finds_every_kind_in_the_factory_originals() -> None:
    """The detector can fail: it sees what cameras and editors put into files."""
    jpeg_found = metadata_markers(factory.jpeg_with_everything())
    assert set(jpeg_found) >= {"EXIF", "XMP", "IPTC", "ICC", "COM"}
    for name, data in {
        "EXIF": factory.jpeg(exif=factory.exif_bytes()),
        "XMP": factory.jpeg(xmp=factory.XMP),
        "IPTC": factory.jpeg(iptc=True),
        "ICC": factory.jpeg(icc=factory.wide_gamut_icc()),
        "COM": factory.jpeg(comment=factory.COMMENT),
    }.items():
        assert metadata_markers(data) == [name]
    assert set(metadata_markers(factory.webp(metadata=True))) == {"EXIF", "XMP", "ICC"}
    png_found = metadata_markers(factory.png(metadata=True, icc=factory.wide_gamut_icc()))
    assert set(png_found) == {"EXIF", "XMP", "ICC", "text"}
    assert metadata_markers(factory.jpeg(progressive=True)) == []


def test_metadata_markers_parses_rather_than_greps() -> None:
    # A comment that mentions Exif and XMP is a comment, not EXIF or XMP.
    tricky = factory.jpeg(comment=b"Exif\x00\x00 http://ns.adobe.com/xap/1.0/\x00 ICC_PROFILE\x00")
    assert metadata_markers(tricky) == ["COM"]
    # Data appended after the end of the image is reported too (phones append previews and depth maps).
    assert metadata_markers(factory.jpeg() + b"\xff\xd8 hidden thumbnail \xff\xd9") == ["trailing data"]
    for broken in (factory.truncated_jpeg(), factory.jpeg()[:300], b"GIF89a....", factory.webp()[:50]):
        with pytest.raises(ValueError):
            metadata_markers(broken)


def test_derivatives_of_a_stuffed_jpeg_carry_no_metadata(tmp_path: Path) -> None:
    path = factory.write(tmp_path, "stuffed.jpg", factory.jpeg_with_everything((2000, 1500), orientation=6))
    original = path.read_bytes()
    assert set(metadata_markers(original)) >= {"EXIF", "XMP", "IPTC", "ICC", "COM"}
    for rendition in make_derivatives(path, max_pixels=MAX_PIXELS):
        assert metadata_markers(rendition.data) == [], (rendition.size, rendition.fmt)
        im = _decode(rendition)
        assert not im.getexif()
        assert not set(im.info) & {"exif", "xmp", "icc_profile", "comment", "photoshop"}
        assert b"Musterfrau" not in rendition.data and b"SN-0042" not in rendition.data


# --------------------------------------------------------------------------------------------------------
# The real corpus
# --------------------------------------------------------------------------------------------------------


def _corpus_files(corpus: Path) -> list[Path]:
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() != ".md")
    assert len(files) > 100, f"the corpus at {corpus} looks incomplete"
    return files


def _camera_jpegs(corpus: Path) -> list[Path]:
    files = sorted(p for p in (corpus / "cameras" / "jpg").iterdir() if p.is_file())
    assert len(files) >= 40, "expected the camera JPEGs of metadata-extractor-images"
    return files


def test_corpus_sniff_and_header_for_every_file(corpus: Path) -> None:
    """Every file ends in a header or a clear refusal; camera JPEGs all read with Pillow's dimensions."""
    outcomes: dict[str, int] = {}
    for path in _corpus_files(corpus):
        sniffed = sniff(path.read_bytes()[:HEAD])
        if sniffed.format is None:
            outcomes[sniffed.detected] = outcomes.get(sniffed.detected, 0) + 1
            continue
        try:
            header = read_header(path, sniffed.format, MAX_PIXELS)
        except Refusal as refusal:
            assert refusal.code == "unreadable", path
            outcomes["unreadable"] = outcomes.get("unreadable", 0) + 1
            continue
        outcomes[header.format] = outcomes.get(header.format, 0) + 1
        if path.parent.name == "jpg" and sniffed.format == "jpeg":
            with Image.open(path) as im:
                assert (header.width, header.height) == im.size, path
    assert (
        outcomes["jpeg"] > 150 and outcomes["heif"] >= 6 and outcomes["avif"] >= 2 and outcomes["webp"] >= 5
    )
    assert outcomes["TIFF"] >= 7 and outcomes["JPEG XL"] == 1


def test_corpus_camera_jpegs_all_make_clean_derivatives(corpus: Path) -> None:
    for path in _camera_jpegs(corpus):
        renditions = make_derivatives(path, max_pixels=MAX_PIXELS)
        assert len(renditions) == len(SIZES) * len(FORMATS)
        for rendition in renditions:
            assert metadata_markers(rendition.data) == [], (path.name, rendition.size, rendition.fmt)
            edge = next(s.max_edge for s in SIZES if s.name == rendition.size)
            assert max(rendition.width, rendition.height) <= edge


def test_corpus_other_formats_make_clean_derivatives(corpus: Path) -> None:
    paths = [
        corpus / "cameras" / "heic" / "IMG_1034.heic",
        corpus / "exif-py" / "heic" / "mobile" / "iphone_13_pro_max.heic",
        corpus / "exif-py" / "avif" / "mountains.avif",
        corpus / "cameras" / "avif" / "32Bit-72dpi-sRGB-800x600.avif",
        *sorted((corpus / "cameras" / "webp").glob("*.webp")),
        corpus / "exif-py" / "jpg" / "gps" / "DSCN0010.jpg",
        corpus / "exif-py" / "jpg" / "tests" / "42_IndexError.jpg",
    ]
    for path in paths:
        for rendition in make_derivatives(path, max_pixels=MAX_PIXELS):
            assert metadata_markers(rendition.data) == [], (path.name, rendition.size, rendition.fmt)


def test_corpus_hostile_files_end_in_derivatives_or_media_error(corpus: Path) -> None:
    """Fuzzed and broken files: never another exception, never slow."""
    paths = [
        *sorted((corpus / "cameras" / "jpg" / "ImageTestSuite").iterdir()),
        *sorted((corpus / "exif-py" / "jpg" / "invalid").iterdir()),
        *sorted((corpus / "cameras" / "heic").iterdir()),
        corpus / "exif-py" / "jpg" / "corrupted.jpg",
    ]
    made = failed = 0
    for path in paths:
        started = time.perf_counter()
        try:
            renditions = make_derivatives(path, max_pixels=MAX_PIXELS)
        except MediaError:
            failed += 1
        else:
            made += 1
            assert all(metadata_markers(r.data) == [] for r in renditions), path
        assert time.perf_counter() - started < 5, path
    assert made and failed
