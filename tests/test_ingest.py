"""The upload pipeline, step by step, with the bad input volunteers will send us."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from archive.ingest import Ingest, IngestResult
from archive.models import Association, AuditEvent, Photo, PhotoStatus, db
from archive.services import get_store
from archive.storage import StorageUnavailable, content_key
from tests.conftest import jpeg_bytes


class Recorder(list[int]):
    def __call__(self, photo_id: int) -> None:
        self.append(photo_id)


@pytest.fixture
def pasadena(app: Flask) -> Association:
    return db.session.scalar(select(Association).where(Association.slug == "pasadena"))


@pytest.fixture
def ingest(app: Flask) -> tuple[Ingest, Recorder]:
    enqueued = Recorder()
    return Ingest(db.session, get_store(), app.config, enqueued), enqueued


def run(ingest: tuple[Ingest, Recorder], data: bytes, name: str, association: Association) -> IngestResult:
    return ingest[0].ingest(io.BytesIO(data), name, association, uploader=None)


def assert_nothing_left(app: Flask) -> None:
    """A refusal leaves no row, no object and no staged file."""
    assert db.session.scalar(select(func.count(Photo.id))) == 0
    assert list(get_store().list("")) == []
    assert list(Path(app.config["STAGING_DIR"]).iterdir()) == []


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge image: a decompression bomb in a few bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_photo_is_archived_and_enqueued(app: Flask, ingest: Any, pasadena: Association) -> None:
    data = jpeg_bytes()
    result = run(ingest, data, "Rheinbrücke.jpg", pasadena)
    assert result.outcome == "archived"
    photo = db.session.get(Photo, result.photo_id)
    assert photo.status == PhotoStatus.PROCESSING
    assert (photo.format, photo.width, photo.height, photo.size_bytes) == ("jpeg", 640, 480, len(data))
    assert photo.original_filename == "Rheinbrücke.jpg"
    # byte for byte under its content key
    assert photo.original_key == content_key(photo.sha256)
    assert b"".join(get_store().iter_chunks(photo.original_key)) == data
    assert ingest[1] == [photo.id]
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.photo_id == photo.id)) == "photo.uploaded"
    assert list(Path(app.config["STAGING_DIR"]).iterdir()) == []


def test_the_same_photo_twice_links_to_the_first(app: Flask, ingest: Any, pasadena: Association) -> None:
    data = jpeg_bytes()
    first = run(ingest, data, "a.jpg", pasadena)
    second = run(ingest, data, "b-copy.jpg", pasadena)
    assert second.outcome == "duplicate"
    assert second.photo_id == first.photo_id
    assert db.session.scalar(select(func.count(Photo.id))) == 1
    assert ingest[1] == [first.photo_id]


@pytest.mark.parametrize(("data", "code", "detected"), [
    (b"", "empty", None),
    (b"Hallo, das ist nur Text.\n" * 10, "not_a_photo", "Text"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "not_a_photo", "SVG"),
    (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
     b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg xmlns="http://www.w3.org/2000/svg"/>',
     "not_a_photo", "SVG"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "not_a_photo", "PDF"),
    (b"<!doctype html><html><body>hi</body></html>", "not_a_photo", "HTML"),
    (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00"
     b"\x01\x00\x01\x00\x00\x02\x02D\x01\x00;", "not_a_photo", "GIF"),
])
def test_what_is_not_a_photo_is_refused_by_its_bytes(app: Flask, ingest: Any, pasadena: Association,
                                                      data: bytes, code: str, detected: str | None) -> None:
    result = run(ingest, data, "urlaub.jpg", pasadena)  # the name claims JPEG: it must not matter
    assert result.outcome == "refused"
    assert result.refusal.code == code
    assert 400 <= result.refusal.status < 500
    if detected:
        assert f"({detected} erkannt)" in result.refusal.de
        assert f"({detected} detected)" in result.refusal.en
    assert_nothing_left(app)
    assert ingest[1] == []


def test_a_decompression_bomb_is_refused_from_its_header(app: Flask, ingest: Any, pasadena: Association) -> None:
    bomb = png_header_only(50_000, 50_000)
    assert len(bomb) < 200
    result = run(ingest, bomb, "bomb.png", pasadena)
    assert result.outcome == "refused"
    assert result.refusal.code == "too_many_pixels"
    assert result.refusal.status == 422
    assert "50000" in result.refusal.de.replace(".", "").replace(" ", "")
    assert_nothing_left(app)


def test_a_file_over_the_size_limit_is_refused_while_streaming(app: Flask, ingest: Any,
                                                              pasadena: Association) -> None:
    app.config["MAX_UPLOAD_BYTES"] = 10_000
    result = run(ingest, jpeg_bytes(size=(1200, 900), quality=100), "big.jpg", pasadena)
    assert result.outcome == "refused"
    assert result.refusal.code == "too_large"
    assert result.refusal.status == 413
    assert_nothing_left(app)


def test_storage_down_is_a_503_and_leaves_nothing(app: Flask, pasadena: Association) -> None:
    class DownStore:
        """Stands in for an object store that cannot be reached (the real S3 outage test is in test_s3_flow)."""

        def put_file(self, *_args: Any) -> None:
            raise StorageUnavailable("connection refused")

    enqueued = Recorder()
    result = Ingest(db.session, DownStore(), app.config, enqueued).ingest(  # type: ignore[arg-type]
        io.BytesIO(jpeg_bytes()), "a.jpg", pasadena, uploader=None)
    assert result.outcome == "refused"
    assert result.refusal.status == 503
    assert "Nichts wurde gespeichert" in result.refusal.de or "nichts gespeichert" in result.refusal.de
    assert db.session.scalar(select(func.count(Photo.id))) == 0
    assert enqueued == []


def test_filenames_are_kept_without_paths_or_control_characters(ingest: Any, pasadena: Association) -> None:
    result = run(ingest, jpeg_bytes(), "../../etc/Brücke\u202e\x00gpj.jpg", pasadena)
    assert result.outcome == "archived"
    assert db.session.get(Photo, result.photo_id).original_filename == "Brückegpj.jpg"


def test_every_corpus_file_ends_archived_or_refused(app: Flask, ingest: Any, pasadena: Association,
                                                    corpus: Path) -> None:
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() != ".md")
    assert len(files) > 100
    outcomes: dict[str, int] = {}
    for path in files:
        result = run(ingest, path.read_bytes(), path.name, pasadena)
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        if result.outcome == "refused":
            assert result.refusal.de and result.refusal.en and 400 <= result.refusal.status < 500, path
    assert outcomes["archived"] > 80
    rows = db.session.scalar(select(func.count(Photo.id)))
    assert rows == outcomes["archived"]
    assert len(list(get_store().list("originals/"))) == rows
    assert list(Path(app.config["STAGING_DIR"]).iterdir()) == []
