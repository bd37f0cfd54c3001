"""The processing job: metadata into typed columns, clean derivatives in the store, idempotent."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import func, select

from archive.ingest import Ingest
from archive.media import FORMATS, SIZES, metadata_markers
from archive.models import Association, Derivative, OutboxEvent, Photo, PhotoStatus, db
from archive.processing import process_photo
from archive.services import get_jobs, get_store
from tests.conftest import jpeg_bytes


def archive_file(app: Flask, data: bytes, name: str = "photo.jpg") -> Photo:
    """Ingest with the app's real (immediate) queue: the job runs at once."""
    association = db.session.scalar(select(Association).where(Association.slug == "lorient"))
    result = Ingest(db.session, get_store(), app.config, get_jobs().enqueue_processing).ingest(
        io.BytesIO(data), name, association, uploader=None)
    assert result.outcome == "archived", result
    db.session.expire_all()
    return db.session.get(Photo, result.photo_id)


def test_a_camera_jpeg_gets_metadata_and_clean_derivatives(app: Flask, corpus: Path) -> None:
    photo = archive_file(app, (corpus / "cameras/jpg/Canon EOS 30D (4).jpg").read_bytes())
    assert photo.status == PhotoStatus.SUBMITTED
    assert photo.camera_make == "Canon"
    assert photo.camera_model == "Canon EOS 30D"
    assert photo.camera == "Canon EOS 30D"
    assert photo.taken_at is not None
    assert photo.exposure_time and photo.f_number and photo.iso
    assert {(d.size, d.fmt) for d in photo.derivatives} == {(s.name, f) for s in SIZES for f in FORMATS}
    for derivative in photo.derivatives:
        data = b"".join(get_store().iter_chunks(derivative.key))
        assert metadata_markers(data) == [], derivative.key
        assert len(data) == derivative.size_bytes
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (derivative.width, derivative.height)
            limit = next(s.max_edge for s in SIZES if s.name == derivative.size)
            assert max(image.size) == min(limit, max(photo.width, photo.height))
    assert db.session.scalar(select(func.count(OutboxEvent.id)).where(OutboxEvent.photo_id == photo.id)) == 1


def test_gps_and_words_from_the_file(app: Flask, corpus: Path) -> None:
    photo = archive_file(app, (corpus / "exif-py/jpg/gps/DSCN0010.jpg").read_bytes())
    assert photo.gps_lat is not None and photo.gps_lon is not None
    assert 43 < photo.gps_lat < 44 and 11 < photo.gps_lon < 12  # Tuscany, as the file says
    for derivative in photo.derivatives:
        assert "EXIF" not in metadata_markers(b"".join(get_store().iter_chunks(derivative.key)))


def test_processing_twice_gives_the_same_rows_and_objects(app: Flask) -> None:
    photo = archive_file(app, jpeg_bytes())
    keys = sorted(d.key for d in photo.derivatives)
    objects = sorted(info.key for info in get_store().list("derivatives/"))
    process_photo(photo.id, db.session, get_store(), app.config, remake=True)
    db.session.expire_all()
    assert sorted(d.key for d in photo.derivatives) == keys
    assert db.session.scalar(select(func.count(Derivative.id))) == len(keys)
    assert sorted(info.key for info in get_store().list("derivatives/")) == objects
    assert photo.status == PhotoStatus.SUBMITTED


def test_an_image_that_cannot_be_decoded_fails_with_a_reason(app: Flask, corpus: Path) -> None:
    # A fuzzed JPEG: its header is fine (so ingest accepts it), its image data is broken.
    broken = (corpus / "cameras/jpg/ImageTestSuite/4085c929e00c446d3fee18b5b20a27f9.jpg").read_bytes()
    photo = archive_file(app, broken, "kaputt.jpg")
    assert photo.status == PhotoStatus.FAILED
    assert "kein Bild" in photo.processing_error and "No image can be made" in photo.processing_error
    assert photo.derivatives == []
    assert list(get_store().list("derivatives/")) == []


def test_a_truncated_camera_jpeg_is_archived_with_what_it_has(app: Flask, corpus: Path) -> None:
    camera = (corpus / "cameras/jpg/Nikon D40.jpg").read_bytes()
    photo = archive_file(app, camera[: len(camera) * 2 // 3], "abgeschnitten.jpg")
    assert photo.status == PhotoStatus.SUBMITTED
    assert len(photo.derivatives) == len(SIZES) * len(FORMATS)


def test_a_missing_original_fails_a_new_photo_with_a_reason(app: Flask) -> None:
    association = db.session.scalar(select(Association).where(Association.slug == "lorient"))
    result = Ingest(db.session, get_store(), app.config, lambda _id: None).ingest(
        io.BytesIO(jpeg_bytes((1, 2, 3))), "a.jpg", association, uploader=None)
    photo = db.session.get(Photo, result.photo_id)
    get_store().delete(photo.original_key)
    process_photo(photo.id, db.session, get_store(), app.config)
    assert photo.status == PhotoStatus.FAILED
    assert "Original fehlt" in photo.processing_error


def test_reprocessing_keeps_status_edits_and_images_of_a_photo(app: Flask, corpus: Path) -> None:
    """`brucken derivatives` or a retry must never undo what people did with a photo."""
    photo = archive_file(app, (corpus / "exif-py/jpg/gps/DSCN0010.jpg").read_bytes())
    photo.status = PhotoStatus.PUBLISHED
    photo.caption = ""  # a curator removed the caption the file offered
    photo.gps_lat = photo.gps_lon = None  # and the position
    photo.taken_at = photo.taken_at.replace(year=2001)  # and corrected the date
    db.session.commit()
    taken = photo.taken_at
    old_keys = sorted(d.key for d in photo.derivatives)

    process_photo(photo.id, db.session, get_store(), app.config, remake=True)
    db.session.expire_all()
    assert (photo.status, photo.caption, photo.gps_lat, photo.taken_at) == (PhotoStatus.PUBLISHED, "", None, taken)
    assert sorted(d.key for d in photo.derivatives) == old_keys  # same bytes, same keys

    # The original vanished: remaking fails, but the photo stays published with its images.
    get_store().delete(photo.original_key)
    process_photo(photo.id, db.session, get_store(), app.config, remake=True)
    db.session.expire_all()
    assert photo.status == PhotoStatus.PUBLISHED
    assert all(get_store().exists(d.key) for d in photo.derivatives)


def test_remade_derivatives_get_new_keys_and_the_old_objects_go(app: Flask) -> None:
    photo = archive_file(app, jpeg_bytes((10, 200, 30)))
    old = {d.size + d.fmt: d.key for d in photo.derivatives}
    app.config["JPEG_QUALITY"] = 60  # different bytes from the same original
    process_photo(photo.id, db.session, get_store(), app.config, remake=True)
    db.session.expire_all()
    new = {d.size + d.fmt: d.key for d in photo.derivatives}
    assert new["thumbjpeg"] != old["thumbjpeg"] and new["thumbwebp"] == old["thumbwebp"]
    assert not get_store().exists(old["thumbjpeg"])
    assert all(get_store().exists(key) for key in new.values())


def test_a_missing_store_is_an_outage_not_a_missing_photo(app: Flask, tmp_path: Path) -> None:
    from archive.storage import StorageUnavailable

    photo = archive_file(app, jpeg_bytes((3, 3, 3)))
    store_dir = Path(app.config["LOCAL_STORE_DIR"])
    store_dir.rename(tmp_path / "unmounted")
    with pytest.raises(StorageUnavailable):
        process_photo(photo.id, db.session, get_store(), app.config, remake=True)
    assert photo.status == PhotoStatus.SUBMITTED


def test_a_repeated_job_leaves_a_processed_photo_alone(app: Flask) -> None:
    photo = archive_file(app, jpeg_bytes((4, 4, 4)))
    photo.caption = ""
    db.session.commit()
    keys = sorted(d.key for d in photo.derivatives)
    app.config["JPEG_QUALITY"] = 50
    process_photo(photo.id, db.session, get_store(), app.config)  # a duplicate of the queued job
    db.session.expire_all()
    assert sorted(d.key for d in photo.derivatives) == keys and photo.processing_attempts == 1


def test_a_photo_deleted_before_its_job_runs_is_skipped(app: Flask) -> None:
    assert process_photo(999_999, db.session, get_store(), app.config) is None


@pytest.mark.parametrize("name", ["IMG_1034.heic"])
def test_heic_from_a_phone(app: Flask, corpus: Path, name: str, tmp_path: Path) -> None:
    source = corpus / "cameras/heic" / name
    copy = tmp_path / name
    shutil.copy(source, copy)
    photo = archive_file(app, copy.read_bytes(), name)
    assert photo.format == "heif"
    assert photo.status == PhotoStatus.SUBMITTED
    assert len(photo.derivatives) == len(SIZES) * len(FORMATS)


def test_every_corpus_file_ends_processed_failed_with_a_reason_or_refused(app: Flask, corpus: Path) -> None:
    """The whole flow (ingest and the processing job) over every real, broken and fuzzed file."""
    import time

    association = db.session.scalar(select(Association).where(Association.slug == "swjahel"))
    ingest = Ingest(db.session, get_store(), app.config, get_jobs().enqueue_processing)
    outcomes: dict[str, int] = {}
    for path in sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() != ".md"):
        started = time.monotonic()
        result = ingest.ingest(io.BytesIO(path.read_bytes()), path.name, association, uploader=None)
        assert time.monotonic() - started < 15, f"{path} took too long"
        if result.outcome == "refused":
            assert result.refusal.de and result.refusal.en, path
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            continue
        if result.outcome == "duplicate":
            outcomes["duplicate"] = outcomes.get("duplicate", 0) + 1
            continue
        db.session.expire_all()
        photo = db.session.get(Photo, result.photo_id)
        outcomes[photo.status] = outcomes.get(photo.status, 0) + 1
        if photo.status == PhotoStatus.FAILED:
            assert photo.processing_error and photo.derivatives == [], path
        else:
            assert photo.status == PhotoStatus.SUBMITTED, path
            assert len(photo.derivatives) == len(SIZES) * len(FORMATS), path
            for derivative in photo.derivatives:
                assert metadata_markers(b"".join(get_store().iter_chunks(derivative.key))) == [], derivative.key
    print(outcomes)
    assert outcomes[PhotoStatus.SUBMITTED] >= 80
    assert list(Path(app.config["STAGING_DIR"]).iterdir()) == []


def test_a_photo_whose_exif_breaks_exifread_is_still_archived(app: Flask) -> None:
    from tests.test_metadata import _exif_that_breaks_exifread

    photo = archive_file(app, jpeg_bytes((40, 80, 120), exif=_exif_that_breaks_exifread()))
    assert photo.status == PhotoStatus.SUBMITTED
    assert len(photo.derivatives) == len(SIZES) * len(FORMATS)
    assert photo.metadata_warnings == ["EXIF unreadable: IndexError"]
    assert photo.camera_model == "Canon EOS 30D"  # read by Pillow instead
