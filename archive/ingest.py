"""The upload pipeline, every step in order, in one place.

receive (stream to staging, hash, count) -> check (sniff the bytes, read the header) -> deduplicate
-> store the original -> record the row -> enqueue processing. The caller gets an answer before any
derivative exists. Every way out removes the staged file; a refusal leaves no row and no object.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import media
from .errors import Refusal, Unavailable, database_unavailable
from .faults import crash_point
from .models import DATABASE_UNAVAILABLE, Association, AuditEvent, Photo, PhotoStatus, User
from .storage import ChecksumMismatch, ObjectStore, StorageError, content_key
from .text import shorten_filename

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
ACCEPTED_NAMES = "JPEG, PNG, WebP, HEIC/HEIF oder AVIF"
ACCEPTED_NAMES_EN = "JPEG, PNG, WebP, HEIC/HEIF or AVIF"

# What media.sniff names in English, as the German refusal says it ("Diese Datei ist kein Foto (MP4-Video erkannt)").
_GERMAN_NAMES = {
    "empty file": "leere Datei", "damaged JPEG": "beschädigtes JPEG", "AVI video": "AVI-Video",
    "WAV audio": "WAV-Audio", "QuickTime video": "QuickTime-Video", "MP4 video": "MP4-Video", "3GP video": "3GP-Video",
    "Canon CR3 raw": "Canon-CR3-Rohdatei", "Fujifilm RAF raw": "Fujifilm-RAF-Rohdatei",
    "Olympus ORF raw": "Olympus-ORF-Rohdatei", "Panasonic RW2 raw": "Panasonic-RW2-Rohdatei",
    "ISO media file": "ISO-Mediendatei", "executable": "ausführbares Programm",
}

Outcome = Literal["archived", "duplicate", "refused"]


@dataclass(frozen=True)
class Staged:
    path: Path
    sha256: str
    size: int
    head: bytes


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    filename: str
    photo_id: int | None = None
    refusal: Refusal | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"outcome": self.outcome, "filename": self.filename, "photo_id": self.photo_id}
        if self.refusal is not None:
            data["reason"] = self.refusal.as_dict()
        return data


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:.0f} MB"


def disk_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


def staging_full(error: OSError) -> Unavailable:
    """The staging disk (or the quota on it) is full: nothing of the file was kept. An operator has to act (free
    space, a bigger disk), so it is logged as an error; the person may simply try again later."""
    log.error("the staging disk is full: %s", error)
    return Unavailable(
        "staging_full",
        "Der Platz für ankommende Dateien ist gerade voll. Es wurde nichts gespeichert. Bitte versuchen Sie es "
        "später noch einmal, und sagen Sie der Verwaltung des Archivs Bescheid, wenn es so bleibt.",
        "The space for incoming files is full right now. Nothing was saved. Please try again later, and tell the "
        "archive's administrators if it stays like this.",
        retry_after=300,
    )


def stage(stream: BinaryIO, staging_dir: Path, max_bytes: int) -> Staged:
    """Copy the upload to a private staging file while hashing and counting; stop at the size limit. A full
    staging disk is a 503 (``staging_full``), with the partial file removed."""
    try:
        return _stage(stream, staging_dir, max_bytes)
    except OSError as error:
        if disk_full(error):
            raise staging_full(error) from error
        raise


def _stage(stream: BinaryIO, staging_dir: Path, max_bytes: int) -> Staged:
    staging_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, name = tempfile.mkstemp(dir=staging_dir, prefix="upload-", suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise Refusal(
                        "too_large",
                        f"Diese Datei ist größer als {_megabytes(max_bytes)}. Bitte laden Sie eine kleinere "
                        "Fassung hoch.",
                        f"This file is larger than {_megabytes(max_bytes)}. Please upload a smaller version.",
                        status=413,
                    )
                if len(head) < media.SNIFF_BYTES:
                    head += chunk[: media.SNIFF_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise Refusal("empty", "Diese Datei ist leer (0 Byte). Bitte wählen Sie das Foto noch einmal aus.",
                      "This file is empty (0 bytes). Please choose the photo again.")
    return Staged(path=path, sha256=digest.hexdigest(), size=size, head=head)


def check(staged: Staged, max_pixels: int) -> media.ImageHeader:
    """Trust only the bytes: the format from the magic numbers, the size from the header."""
    sniffed = media.sniff(staged.head)
    if sniffed.format is None:
        de, en = _GERMAN_NAMES.get(sniffed.detected, sniffed.detected), sniffed.detected
        if sniffed.detected == "unknown":
            de, en = "Format unbekannt", "unknown format"
        else:
            de, en = f"{de} erkannt", f"{en} detected"
        raise Refusal(
            "not_a_photo",
            f"Diese Datei ist kein Foto ({de}). Bitte laden Sie {ACCEPTED_NAMES} hoch.",
            f"This file is not a photo ({en}). Please upload {ACCEPTED_NAMES_EN}.",
            status=415,
        )
    return media.read_header(staged.path, sniffed.format, max_pixels)


class Ingest:
    """Takes one file at a time into the archive. Dependencies come in; nothing is global."""

    def __init__(self, session: Session, store: ObjectStore, settings: dict[str, Any],
                 enqueue: Callable[[int], None]) -> None:
        self.session = session
        self.store = store
        self.settings = settings
        self.enqueue = enqueue

    def ingest(self, stream: BinaryIO, filename: str, association: Association,
               uploader: User | None) -> IngestResult:
        filename = _clean_filename(filename)
        try:
            staged = stage(stream, Path(self.settings["STAGING_DIR"]), int(self.settings["MAX_UPLOAD_BYTES"]))
        except Refusal as refusal:
            return IngestResult("refused", filename, refusal=refusal)
        crash_point("ingest.staged")
        try:
            return self._archive(staged, filename, association, uploader)
        except Refusal as refusal:
            return IngestResult("refused", filename, refusal=refusal)
        except DATABASE_UNAVAILABLE as error:
            # Locked past the busy timeout, or the server gone: this file is not kept; the next may be.
            self.session.rollback()
            log.warning("database unavailable while archiving %s: %s", filename, error)
            return IngestResult("refused", filename, refusal=database_unavailable())
        finally:
            staged.path.unlink(missing_ok=True)

    def _archive(self, staged: Staged, filename: str, association: Association,
                 uploader: User | None) -> IngestResult:
        header = check(staged, int(self.settings["MAX_PIXELS"]))

        existing = self._find(staged.sha256)
        if existing is not None:
            return IngestResult("duplicate", filename, photo_id=existing)

        key = content_key(staged.sha256)
        try:
            self.store.put_file(key, staged.path, media.ACCEPTED[header.format])
        except ChecksumMismatch as error:
            log.warning("storing %s failed: %s", key, error)
            raise _damaged_on_the_way() from error
        except StorageError as error:
            log.warning("storing %s failed: %s", key, error)
            raise _store_down() from error
        crash_point("ingest.stored")

        photo = Photo(
            association_id=association.id,
            uploader_id=uploader.id if uploader else None,
            status=PhotoStatus.PROCESSING,
            sha256=staged.sha256,
            original_key=key,
            original_filename=filename,
            format=header.format,
            mime_type=media.ACCEPTED[header.format],
            size_bytes=staged.size,
            width=header.width,
            height=header.height,
        )
        self.session.add(photo)
        try:
            self.session.flush()
            self.session.add(AuditEvent(actor_id=photo.uploader_id, action="photo.uploaded", photo_id=photo.id,
                                        detail={"filename": filename, "sha256": staged.sha256}))
            self.session.commit()
        except IntegrityError:
            # The same photo arrived twice at once: the other upload won, and its row owns the object.
            self.session.rollback()
            existing = self._find(staged.sha256)
            if existing is not None:
                return IngestResult("duplicate", filename, photo_id=existing)
            raise
        except BaseException:
            # The stored object may now belong to nobody. It is not deleted here: the same photo may be
            # arriving in another request right now, under the same content key. Reconcile removes it
            # once it is old enough and still unreferenced.
            self.session.rollback()
            raise
        crash_point("ingest.recorded")

        try:
            self.enqueue(photo.id)
        except Exception:
            # The row is committed and stays 'processing'; reconcile enqueues it again.
            log.exception("could not enqueue processing of photo %s", photo.id)
        return IngestResult("archived", filename, photo_id=photo.id)

    def _find(self, sha256: str) -> int | None:
        return self.session.scalar(select(Photo.id).where(Photo.sha256 == sha256))


def _damaged_on_the_way() -> Unavailable:
    # A 503, not a 4xx: the file itself is fine, and the same upload again usually goes through.
    return Unavailable(
        "storage_damaged",
        "Das Foto ist auf dem Weg zum Fotospeicher beschädigt worden. Es wurde nichts gespeichert. "
        "Bitte laden Sie es noch einmal hoch.",
        "The photo was damaged on its way to the photo storage. Nothing was saved. Please upload it again.",
        retry_after=5,
    )


def _store_down() -> Unavailable:
    return Unavailable(
        "storage_unavailable",
        "Der Fotospeicher ist gerade nicht erreichbar. Es wurde nichts gespeichert. "
        "Bitte versuchen Sie es in einer Minute noch einmal.",
        "The photo storage cannot be reached right now. Nothing was saved. Please try again in a minute.",
    )


def _clean_filename(name: str) -> str:
    """Keep the name people gave the file (for display), without paths or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\u202a\u202b\u202c\u202d\u202e")
    return shorten_filename(name.strip(), 255) or "foto"
