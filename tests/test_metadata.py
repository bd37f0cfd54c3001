"""Tests for archive.metadata: crafted files made here with Pillow, plus the shared corpus of real camera files."""

from __future__ import annotations

import io
import os
import struct
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import exifread
import pytest
from defusedxml import DTDForbidden
from PIL import Image, ImageFile, TiffImagePlugin

from archive import metadata
from archive.metadata import PhotoMetadata, read_metadata

R = TiffImagePlugin.IFDRational

CORPUS = Path(os.environ.get("BRUCKEN_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus"))
CORPUS_FILE_SECONDS = 5.0


# ------------------------------------------------------------------------------------------ fixtures


def _jpeg(
    tmp_path: Path,
    name: str = "photo.jpg",
    *,
    exif: Image.Exif | bytes | None = None,
    xmp: bytes | None = None,
    app13: bytes | None = None,
) -> Path:
    buf = io.BytesIO()
    kwargs: dict[str, object] = {}
    if exif is not None:
        kwargs["exif"] = exif
    if xmp is not None:
        kwargs["xmp"] = xmp
    Image.new("RGB", (16, 12), "steelblue").save(buf, "JPEG", **kwargs)
    data = buf.getvalue()
    if app13 is not None:
        data = data[:2] + app13 + data[2:]  # right after SOI
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _full_exif(lat_ref: str = "N", lon_ref: str = "E") -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 30D"
    exif[0x0112] = 6
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2023:07:14 18:30:05"  # DateTimeOriginal
    sub[0x9004] = "2023:07:15 09:00:00"  # DateTimeDigitized (must lose)
    sub[0x829A] = R(1, 250)  # ExposureTime
    sub[0x829D] = R(28, 10)  # FNumber
    sub[0x920A] = R(50, 1)  # FocalLength
    sub[0x8827] = 400  # ISO
    sub[0xA433] = "Canon"  # LensMake
    sub[0xA434] = "EF50mm f/1.8 II"  # LensModel
    gps = exif.get_ifd(0x8825)
    gps[1] = lat_ref
    gps[2] = (R(49, 1), R(28, 1), R(4050, 100))  # 49° 28' 40.5"
    gps[3] = lon_ref
    gps[4] = (R(8, 1), R(26, 1), R(9, 1))  # 8° 26' 9"
    return exif


def _iptc_app13(datasets: list[tuple[int, int, bytes]]) -> bytes:
    """A JPEG APP13 segment: "Photoshop 3.0" + one 8BIM resource 0x0404 holding IPTC-IIM datasets."""
    iptc = b"".join(b"\x1c" + bytes([rec, num]) + struct.pack(">H", len(val)) + val for rec, num, val in datasets)
    resource = b"8BIM" + b"\x04\x04" + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    if len(iptc) % 2:
        resource += b"\x00"
    payload = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload


def _xmp(description: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/">'
        f"{description}"
        "</rdf:Description></rdf:RDF></x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def _corpus() -> Path:
    """The shared corpus of real camera files. Missing means a broken checkout: fail, never skip."""
    if not (CORPUS / "exif-py").is_dir() or not (CORPUS / "cameras").is_dir():
        pytest.fail(
            f"Photo corpus not found at {CORPUS}. It holds the real camera files these tests need and CI always "
            "has it; set BRUCKEN_CORPUS to its folder (exif-py/ and cameras/ inside).",
            pytrace=False,
        )
    return CORPUS


# ---------------------------------------------------------------------------------------- crafted EXIF


def test_full_exif_is_read_back_exactly(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path, exif=_full_exif()))

    assert meta.taken_at == datetime(2023, 7, 14, 18, 30, 5)
    assert meta.taken_at.tzinfo is None
    assert meta.camera_make == "Canon"
    assert meta.camera_model == "Canon EOS 30D"
    assert meta.lens == "Canon EF50mm f/1.8 II"  # LensMake + LensModel
    assert meta.exposure_time == "1/250"
    assert meta.f_number == 2.8
    assert meta.focal_length_mm == 50.0
    assert meta.iso == 400
    assert meta.gps_lat == pytest.approx(49 + 28 / 60 + 40.5 / 3600, abs=1e-6)
    assert meta.gps_lon == pytest.approx(8 + 26 / 60 + 9 / 3600, abs=1e-6)
    assert meta.orientation == 6
    assert meta.warnings == []
    assert meta.camera_summary() == "Canon EOS 30D · 50 mm · f/2.8 · 1/250 s · ISO 400"


def test_lens_make_is_prefixed_when_model_lacks_it(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA433] = "Sigma"
    exif.get_ifd(0x8769)[0xA434] = "30mm F1.4 DC HSM"
    assert read_metadata(_jpeg(tmp_path, exif=exif)).lens == "Sigma 30mm F1.4 DC HSM"


@pytest.mark.parametrize(
    ("lat_ref", "lon_ref", "lat_sign", "lon_sign"),
    [("N", "E", 1, 1), ("S", "W", -1, -1), ("N", "W", 1, -1), ("S", "E", -1, 1)],
)
def test_gps_sign_follows_reference(tmp_path: Path, lat_ref: str, lon_ref: str, lat_sign: int, lon_sign: int) -> None:
    meta = read_metadata(_jpeg(tmp_path, exif=_full_exif(lat_ref, lon_ref)))
    assert meta.gps_lat == pytest.approx(lat_sign * 49.4779167, abs=1e-6)
    assert meta.gps_lon == pytest.approx(lon_sign * 8.4358333, abs=1e-6)


@pytest.mark.parametrize(
    ("latitude", "reason"),
    [
        ((R(95, 1), R(0, 1), R(0, 1)), "more than 90 degrees"),
        ((R(49, 1), R(75, 1), R(0, 1)), "75 minutes"),
        ((R(49, 0), R(0, 0), R(0, 0)), "zero denominators"),
        ((R(0, 1), R(0, 1), R(0, 1)), "0,0 is 'no fix'"),
    ],
)
def test_impossible_gps_is_rejected_with_a_warning(tmp_path: Path, latitude: tuple, reason: str) -> None:
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", latitude
    gps[3], gps[4] = "E", (R(0, 1), R(0, 1), R(0, 1))
    meta = read_metadata(_jpeg(tmp_path, exif=exif))
    assert (meta.gps_lat, meta.gps_lon) == (None, None), reason
    assert any(w.startswith("GPS position ignored") for w in meta.warnings)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (R(1, 250), "1/250"),
        (R(10, 2500), "1/250"),
        (R(5, 2), "2.5"),
        (R(30, 1), "30"),
        (R(3, 10), "0.3"),
        (R(813669, 100000000), "1/123"),
        (R(0, 1), None),
    ],
)
def test_exposure_time_display(tmp_path: Path, value: R, shown: str | None) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x829A] = value
    assert read_metadata(_jpeg(tmp_path, exif=exif)).exposure_time == shown


def test_offset_time_original_gives_an_aware_datetime(tmp_path: Path) -> None:
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2024:03:31 02:30:00"
    sub[0x9011] = "+02:00"
    sub[0x9291] = "45"  # SubSecTimeOriginal
    meta = read_metadata(_jpeg(tmp_path, exif=exif))
    assert meta.taken_at == datetime(2024, 3, 31, 2, 30, 0, 450000, tzinfo=timezone(timedelta(hours=2)))


def test_date_falls_back_to_digitized_then_datetime_and_ignores_junk(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0132] = "2001:02:03 04:05:06"  # DateTime
    exif.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"  # a camera without a clock
    meta = read_metadata(_jpeg(tmp_path, "a.jpg", exif=exif))
    assert meta.taken_at == datetime(2001, 2, 3, 4, 5, 6)

    exif.get_ifd(0x8769)[0x9004] = "2001:02:03 10:00:00"
    assert read_metadata(_jpeg(tmp_path, "b.jpg", exif=exif)).taken_at == datetime(2001, 2, 3, 10, 0, 0)


def test_exif_text_is_cleaned_and_decoded(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "  NIKON\x07 CORPORATION  "
    exif[0x0110] = "NIKON D40"
    exif[0x013B] = b"(C)Hendrik W\xf6rdehoff"  # latin-1, as old cameras write it (Pillow writes bytes as-is)
    exif[0x8298] = "COPYRIGHT, 2007"  # camera default
    exif[0x010E] = "OLYMPUS DIGITAL CAMERA         "
    meta = read_metadata(_jpeg(tmp_path, exif=exif))
    assert meta.camera_make == "NIKON CORPORATION"
    assert meta.creator == "(C)Hendrik Wördehoff"
    assert meta.copyright is None
    assert meta.caption is None
    assert meta.camera_summary() == "NIKON D40"  # the make is not repeated


def test_utf8_exif_text_is_not_mangled(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "Die Brücke über den Rhein".encode()  # UTF-8 bytes in an ASCII tag, as phones write them
    assert read_metadata(_jpeg(tmp_path, exif=exif)).caption == "Die Brücke über den Rhein"


def test_camera_summary_parts_present_only() -> None:
    assert PhotoMetadata().camera_summary() is None
    assert PhotoMetadata(camera_make="SONY", camera_model="DSC-G1", iso=100).camera_summary() == "SONY DSC-G1 · ISO 100"
    assert (
        PhotoMetadata(camera_make="CASIO COMPUTER CO.,LTD.", camera_model="EX-S1", f_number=2.5).camera_summary()
        == "CASIO EX-S1 · f/2.5"
    )
    assert PhotoMetadata(exposure_time="2.5", focal_length_mm=4.25).camera_summary() == "4.25 mm · 2.5 s"


# ----------------------------------------------------------------------------------------------- XMP

XMP_FULL = _xmp(
    "<dc:title><rdf:Alt>"
    '<rdf:li xml:lang="de-DE">Rheinbrücke</rdf:li>'
    '<rdf:li xml:lang="x-default">Die Brücke</rdf:li>'
    "</rdf:Alt></dc:title>"
    '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">Die Brücke über den Rhein\nbei Nacht</rdf:li>'
    "</rdf:Alt></dc:description>"
    "<dc:subject><rdf:Bag><rdf:li>Brücke</rdf:li><rdf:li>Rhein</rdf:li><rdf:li>brücke</rdf:li>"
    "<rdf:li>Ludwigshafen</rdf:li></rdf:Bag></dc:subject>"
    "<dc:creator><rdf:Seq><rdf:li>Anna Schmidt</rdf:li><rdf:li>Jan Novák</rdf:li></rdf:Seq></dc:creator>"
    '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">© 2024 Fotoprojekt Brücken</rdf:li></rdf:Alt></dc:rights>'
)


def test_xmp_fields(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path, xmp=XMP_FULL))
    assert meta.title == "Die Brücke"  # x-default wins over the first entry
    assert meta.caption == "Die Brücke über den Rhein\nbei Nacht"  # newline kept in captions
    assert meta.keywords == ["Brücke", "Rhein", "Ludwigshafen"]  # deduplicated, order kept
    assert meta.creator == "Anna Schmidt, Jan Novák"
    assert meta.copyright == "© 2024 Fotoprojekt Brücken"
    assert meta.warnings == []


def test_xmp_attribute_style_values_and_date_fallback(tmp_path: Path) -> None:
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        b' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
        b' dc:creator="Anna Schmidt" photoshop:DateCreated="2021-06-01T10:00:00+02:00"/>'
        b"</rdf:RDF></x:xmpmeta>\x00\x00 trailing junk"
    )
    meta = read_metadata(_jpeg(tmp_path, xmp=packet))
    assert meta.creator == "Anna Schmidt"
    assert meta.taken_at == datetime(2021, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))


def test_xmp_rdf_alt_without_x_default_takes_the_first(tmp_path: Path) -> None:
    packet = _xmp(
        '<dc:title><rdf:Alt><rdf:li xml:lang="en">Bridge</rdf:li>'
        '<rdf:li xml:lang="de">Brücke</rdf:li></rdf:Alt></dc:title>'
    )
    assert read_metadata(_jpeg(tmp_path, xmp=packet)).title == "Bridge"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">&lol9;</rdf:li></rdf:Alt></dc:title>
</rdf:Description></rdf:RDF></x:xmpmeta>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">&xxe;</rdf:li></rdf:Alt></dc:description>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


@pytest.mark.parametrize("packet", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_hostile_xmp_is_refused_without_expansion(tmp_path: Path, packet: bytes) -> None:
    with pytest.raises(DTDForbidden):
        metadata._parse_xmp(packet)

    exif = Image.Exif()
    exif[0x010F] = "Canon"
    started = time.perf_counter()
    meta = read_metadata(_jpeg(tmp_path, exif=exif, xmp=packet))
    assert time.perf_counter() - started < 2
    assert meta.warnings == ["XMP unreadable: defusedxml.DTDForbidden"]
    assert meta.camera_make == "Canon"  # everything else still read
    assert meta.title is None and meta.caption is None
    assert "root:" not in repr(meta) and "lollol" not in repr(meta)


def test_malformed_xmp_is_a_warning(tmp_path: Path) -> None:
    meta = read_metadata(_jpeg(tmp_path, xmp=b"<x:xmpmeta><rdf:RDF><unclosed>"))
    assert meta.warnings == ["XMP unreadable: xml.ParseError"]


# ---------------------------------------------------------------------------------------------- IPTC


def test_iptc_fields_with_utf8_umlauts(tmp_path: Path) -> None:
    app13 = _iptc_app13(
        [
            (1, 90, b"\x1b%G"),  # coded character set: UTF-8
            (2, 5, "Rheinbrücke".encode()),
            (2, 120, "Die Brücke über den Rhein\r\nbei Nacht\x07".encode()),
            (2, 25, "Brücke".encode()),
            (2, 25, b"Rhein"),
            (2, 25, "BRÜCKE".encode()),  # duplicate, other case
            (2, 80, "Jörg Müller".encode()),
            (2, 116, "© Jörg Müller".encode()),
        ]
    )
    meta = read_metadata(_jpeg(tmp_path, app13=app13))
    assert meta.title == "Rheinbrücke"
    assert meta.caption == "Die Brücke über den Rhein\nbei Nacht"
    assert meta.keywords == ["Brücke", "Rhein"]
    assert meta.creator == "Jörg Müller"
    assert meta.copyright == "© Jörg Müller"
    assert meta.warnings == []


def test_iptc_in_cp1252_is_decoded(tmp_path: Path) -> None:
    app13 = _iptc_app13([(2, 120, "Die Brücke über den Rhein – 1927".encode("cp1252"))])
    assert read_metadata(_jpeg(tmp_path, app13=app13)).caption == "Die Brücke über den Rhein – 1927"


def test_iptc_beats_xmp_beats_exif(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "from EXIF"
    exif[0x013B] = "EXIF Artist"
    xmp = _xmp(
        '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">from XMP</rdf:li></rdf:Alt></dc:description>'
        "<dc:subject><rdf:Bag><rdf:li>xmp-tag</rdf:li></rdf:Bag></dc:subject>"
    )
    iptc = _iptc_app13([(2, 120, b"from IPTC"), (2, 25, b"iptc-tag")])

    assert read_metadata(_jpeg(tmp_path, "1.jpg", exif=exif, xmp=xmp, app13=iptc)).caption == "from IPTC"
    assert read_metadata(_jpeg(tmp_path, "2.jpg", exif=exif, xmp=xmp)).caption == "from XMP"
    only_exif = read_metadata(_jpeg(tmp_path, "3.jpg", exif=exif))
    assert (only_exif.caption, only_exif.creator) == ("from EXIF", "EXIF Artist")
    both = read_metadata(_jpeg(tmp_path, "4.jpg", xmp=xmp, app13=iptc))
    assert both.keywords == ["iptc-tag", "xmp-tag"]


def test_placeholder_iptc_caption_falls_through(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "Blick vom Dom"
    iptc = _iptc_app13([(2, 120, b"                               "), (2, 5, b"SONY DSC")])
    meta = read_metadata(_jpeg(tmp_path, exif=exif, app13=iptc))
    assert meta.caption == "Blick vom Dom"
    assert meta.title is None


def test_field_lengths_are_capped(tmp_path: Path) -> None:
    iptc = _iptc_app13([(2, 120, b"a" * 5000), (2, 5, b"t" * 1000)] + [(2, 25, f"k{i}".encode()) for i in range(300)])
    meta = read_metadata(_jpeg(tmp_path, app13=iptc))
    assert meta.caption == "a" * metadata.CAPTION_MAX
    assert meta.title == "t" * metadata.FIELD_MAX
    assert len(meta.keywords) == metadata.KEYWORDS_MAX


# ---------------------------------------------------------------------------------- failures & fallback


def _exif_that_breaks_exifread() -> bytes:
    """EXIF whose ExifIFD pointer has count 0: exifread 3.5.1 indexes its empty value list (IndexError)."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 30D"
    exif.get_ifd(0x8769)[0x9003] = "2023:07:14 18:30:05"
    raw = bytearray(exif.tobytes())
    assert raw[:6] == b"Exif\x00\x00"
    tiff = 6
    endian = ">" if raw[tiff : tiff + 2] == b"MM" else "<"
    ifd0 = tiff + struct.unpack(endian + "I", raw[tiff + 4 : tiff + 8])[0]
    (entries,) = struct.unpack(endian + "H", raw[ifd0 : ifd0 + 2])
    for i in range(entries):
        entry = ifd0 + 2 + 12 * i
        if struct.unpack(endian + "H", raw[entry : entry + 2])[0] == 0x8769:
            raw[entry + 4 : entry + 8] = struct.pack(endian + "I", 0)
            return bytes(raw)
    raise AssertionError("no ExifIFD pointer written")


def test_exifread_raising_still_returns_with_a_warning_and_pillow_fallback(tmp_path: Path) -> None:
    path = _jpeg(tmp_path, exif=_exif_that_breaks_exifread())
    with path.open("rb") as fh, pytest.raises(IndexError):
        exifread.process_file(fh, details=False)  # the fixture really does break exifread

    meta = read_metadata(path)
    assert meta.warnings == ["EXIF unreadable: IndexError"]
    assert (meta.camera_make, meta.camera_model) == ("Canon", "Canon EOS 30D")  # via Pillow


def test_exifread_budget_stops_runaway_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "EXIFREAD_MAX_FILE_OPERATIONS", 3)
    meta = read_metadata(_jpeg(tmp_path, exif=_full_exif()))
    assert meta.warnings == ["EXIF unreadable: archive._BudgetExceededError"]
    assert meta.camera_model == "Canon EOS 30D"  # Pillow filled in
    assert meta.taken_at == datetime(2023, 7, 14, 18, 30, 5)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jpg", b""),
        ("text.jpg", b"this is not an image at all\n" * 10),
        ("truncated.jpg", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*"),
        ("soi-only.jpg", b"\xff\xd8"),
        ("fake.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 40),
        ("png-no-exif.png", None),
    ],
)
def test_garbage_never_raises(tmp_path: Path, name: str, content: bytes | None) -> None:
    path = tmp_path / name
    if content is None:
        Image.new("RGB", (4, 4)).save(path, "PNG")
    else:
        path.write_bytes(content)
    meta = read_metadata(path)
    assert isinstance(meta, PhotoMetadata)
    assert meta.taken_at is None and meta.camera_make is None


def test_missing_file_is_a_warning(tmp_path: Path) -> None:
    meta = read_metadata(tmp_path / "gone.jpg")
    assert meta.warnings == ["File unreadable: FileNotFoundError"]


def test_heic_written_by_pillow_heif_uses_pillow_fallback(tmp_path: Path) -> None:
    from archive.media import ensure_plugins

    ensure_plugins()
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    path = tmp_path / "written.heic"
    Image.new("RGB", (16, 16), "red").save(path, format="HEIF", exif=exif.tobytes())
    with path.open("rb") as fh, pytest.raises(AssertionError):
        exifread.process_file(fh, details=False)  # the known exifread 3.5.1 failure

    meta = read_metadata(path)
    assert meta.warnings == ["EXIF unreadable: AssertionError"]
    assert (meta.camera_make, meta.camera_model) == ("Apple", "iPhone 15")
    assert meta.taken_at == datetime(2024, 5, 6, 7, 8, 9)


def test_no_pixels_are_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pillow_heif.as_plugin

    corpus = _corpus()

    def refuse(self: object) -> None:
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(pillow_heif.as_plugin._LibHeifImageFile, "load", refuse)
    iptc = _iptc_app13([(2, 120, b"caption")])
    assert read_metadata(_jpeg(tmp_path, exif=_full_exif(), xmp=XMP_FULL, app13=iptc)).warnings == []
    for name in (
        "cameras/heic/IMG_1034.heic",
        "exif-py/tiff/DudleyLeavittUtah.tiff",
        "cameras/webp/Nikon D1X.webp",
        "exif-py/avif/mountains.avif",
    ):
        meta = read_metadata(corpus / name)
        assert meta.warnings == [], name


# -------------------------------------------------------------------------------------------- corpus


def test_corpus_heic_date_and_make() -> None:
    corpus = _corpus()
    meta = read_metadata(corpus / "cameras/heic/IMG_1034.heic")
    assert meta.taken_at == datetime(2018, 2, 5, 15, 11, 44, 277000)
    assert (meta.camera_make, meta.camera_model) == ("Apple", "iPhone 8")


def test_corpus_heic_through_the_pillow_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = _corpus()

    def broken(fh: object) -> dict:
        raise AssertionError  # what exifread 3.5.1 does on HEIC files written by pillow-heif

    monkeypatch.setattr(metadata, "_exif_via_exifread", broken)
    meta = read_metadata(corpus / "cameras/heic/IMG_1034.heic")
    assert meta.warnings == ["EXIF unreadable: AssertionError"]
    assert meta.taken_at == datetime(2018, 2, 5, 15, 11, 44, 277000)
    assert (meta.camera_make, meta.camera_model) == ("Apple", "iPhone 8")
    assert meta.gps_lat == pytest.approx(23.1779167) and meta.gps_lon == pytest.approx(113.3943167)

    meta = read_metadata(corpus / "exif-py/heic/mobile/iphone_13_pro_max.heic")
    assert meta.taken_at == datetime(2022, 2, 16, 12, 55, 41, 762000, tzinfo=timezone(timedelta(hours=1)))
    assert meta.camera_model == "iPhone 13 Pro Max"


def test_heic_orientation_is_what_pillow_shows() -> None:
    corpus = _corpus()
    # The raw EXIF says 6 (rotate 90° CW), but pillow-heif already rotates while decoding and reports 1:
    # passing 6 on would rotate these photos twice.
    path = corpus / "exif-py/heic/mobile/iphone_13_pro_max.heic"
    with path.open("rb") as fh:
        assert exifread.process_file(fh, details=False)["Image Orientation"].values == [6]
    assert read_metadata(path).orientation == 1


KNOWN_CAMERAS = [
    # file, make, model, further expected attributes
    (
        "cameras/jpg/Canon EOS 30D (4).jpg",
        "Canon",
        "Canon EOS 30D",
        {
            "taken_at": datetime(2009, 7, 17, 14, 37, 26),
            "camera_summary()": "Canon EOS 30D · 240 mm · f/5.6 · 1/80 s · ISO 100",
        },
    ),
    (
        "cameras/jpg/Nikon D40.jpg",
        "NIKON CORPORATION",
        "NIKON D40",
        {"creator": "Phil Askey", "orientation": 6, "exposure_time": "1/160"},
    ),
    ("cameras/jpg/Sony D5403 (Xperia Z2).jpg", "Sony", "D6503", {"iso": 64, "f_number": 2.0}),
    (
        "cameras/jpg/Olympus C3030Z.jpg",
        "OLYMPUS OPTICAL CO.,LTD",
        "C3030Z",
        {"caption": None, "camera_summary()": "OLYMPUS C3030Z · 19.1 mm · f/2.8 · 1/6 s · ISO 400"},
    ),
    ("cameras/jpg/Ricoh DC-3Z (low res).jpg", "RICOH", "DC-3Z", {"copyright": "(C)Hendrik Wördehoff"}),
    (
        "cameras/jpg/FujiFilm FinePixS1Pro (3).jpg",
        "FUJIFILM",
        "FinePixS2Pro",
        {"title": "Wheat", "creator": "Ian Britton", "gps_lat": 55.1048333, "gps_lon": -1.8845},
    ),
    (
        "exif-py/jpg/gps/DSCN0010.jpg",
        "NIKON",
        "COOLPIX P6000",
        {"gps_lat": 43.4674483, "gps_lon": 11.8851267, "exposure_time": "1/75"},
    ),
    (
        "exif-py/jpg/Kodak_CX7530.jpg",
        "EASTMAN KODAK COMPANY",
        "KODAK CX7530 ZOOM DIGITAL CAMERA",
        {"gps_lat": -0.3713, "gps_lon": 36.0564167},
    ),
    (
        "exif-py/jpg/hdr/iphone_hdr_YES.jpg",
        "Apple",
        "iPhone 6",
        {"lens": "Apple iPhone 6 back camera 4.15mm f/2.2", "gps_lon": -3.7247528},
    ),
    (
        "cameras/webp/Nikon D1X.webp",
        "NIKON CORPORATION",
        "NIKON D1X",  # exifread finds nothing in this WebP
        {"taken_at": datetime(2003, 8, 6, 18, 4, 34, 610000), "copyright": None},
    ),
    ("exif-py/avif/mountains.avif", "OLYMPUS CORPORATION", "E-PL8", {"lens": "LEICA DG SUMMILUX 25/F1.4"}),
    (
        "exif-py/raw/nikon_z_9_high_efficiency_compressed_dx_cropped_max_overexposed.dng",
        "NIKON CORPORATION",
        "NIKON Z 9",
        {"exposure_time": "30", "iso": 102400, "lens": "NIKON NIKKOR Z 85mm f/1.2 S"},
    ),
    (
        "exif-py/jpg/xmp/BlueSquare.jpg",
        None,
        None,
        {"title": "Blue Square Test File - .jpg", "keywords": ["XMP", "Blue Square", "test file", "Photoshop", ".jpg"]},
    ),
    (
        "cameras/jpg/Issue 258 (dotnet).jpg",
        None,
        None,
        {
            "title": "The Title (ref2019.1)",
            "keywords": ["Keyword1ref2019.1", "Keyword2ref2019.1", "Keyword3ref2019.1"],
            "creator": "Creator1 (ref2019.1)",
        },
    ),
]


@pytest.mark.parametrize(("name", "make", "model", "expected"), KNOWN_CAMERAS, ids=[k[0] for k in KNOWN_CAMERAS])
def test_known_corpus_cameras(name: str, make: str | None, model: str | None, expected: dict) -> None:
    corpus = _corpus()
    meta = read_metadata(corpus / name)
    assert (meta.camera_make, meta.camera_model) == (make, model)
    for attribute, value in expected.items():
        actual = meta.camera_summary() if attribute == "camera_summary()" else getattr(meta, attribute)
        if isinstance(value, float):
            assert actual == pytest.approx(value, abs=1e-6), attribute
        else:
            assert actual == value, attribute


def test_corpus_orientations() -> None:
    corpus = _corpus()
    for kind in ("landscape", "portrait"):
        for n in range(1, 9):
            assert read_metadata(corpus / f"exif-py/jpg/orientation/{kind}_{n}.jpg").orientation == n


def test_every_corpus_file_returns_quickly_and_never_raises() -> None:
    corpus = _corpus()
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    assert len(files) >= 150, f"corpus at {corpus} looks incomplete: {len(files)} files"
    timings: list[tuple[float, str]] = []
    with_camera = 0
    for path in files:
        started = time.perf_counter()
        meta = read_metadata(path)  # must not raise
        elapsed = time.perf_counter() - started
        timings.append((elapsed, str(path.relative_to(corpus))))
        assert isinstance(meta, PhotoMetadata)
        assert meta.orientation in (None, *range(1, 9))
        assert meta.gps_lat is None or -90 <= meta.gps_lat <= 90
        assert meta.gps_lon is None or -180 <= meta.gps_lon <= 180
        assert all(len(v) <= metadata.FIELD_MAX for v in (meta.title, meta.creator, meta.copyright) if v)
        with_camera += meta.camera_make is not None
    slow = [(round(t, 2), name) for t, name in timings if t > CORPUS_FILE_SECONDS]
    assert not slow, f"slow files: {slow}"
    assert with_camera >= 100, "camera make should be found in most of the corpus"
