"""Step 6 of a photo's flow, run by the job worker: read the metadata, make the derivatives,
store them, and move the photo on. Idempotent: running it twice gives the same rows and objects.

Both steps decode untrusted bytes, so each runs in a child process of its own with DECODE_MEMORY_MB and
DECODE_SECONDS as limits (``archive.sandbox``): a file that makes a decoder hang, crash or ask for gigabytes
costs that child, never the worker. Metadata the limits stop is left out (the photo is archived without it and
``metadata_warnings`` says why); a photo whose derivatives they stop fails with the reason, once, since the
same file would be stopped again."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import media, sandbox
from .faults import crash_point
from .metadata import PhotoMetadata, read_metadata
from .models import AuditEvent, Derivative, OutboxEvent, Photo, PhotoStatus, Tag, utcnow
from .storage import ObjectNotFound, ObjectStore, delete_best_effort

log = logging.getLogger(__name__)


def derivative_key(sha256: str, size: str, fmt: str, digest: str) -> str:
    """Each rendition's key names its content: a remade derivative never overwrites the one being served."""
    ext = "jpg" if fmt == "jpeg" else fmt
    return f"derivatives/{sha256[:2]}/{sha256}/{size}-{digest[:16]}.{ext}"


def process_photo(photo_id: int, session: Session, store: ObjectStore, settings: dict[str, Any], *,
                  remake: bool = False) -> Photo | None:
    """Make everything a photo needs from its original. Returns None when the photo is gone.

    The queued job does its work once: a photo no longer 'processing' was done by an earlier or a
    duplicate job, and is left alone. ``remake`` (``brucken derivatives``) makes the images again for a
    photo in any state; then only the images change: what people have edited, and the status, stay.
    """
    photo = session.get(Photo, photo_id)
    if photo is None:
        return None
    if not remake and photo.status != PhotoStatus.PROCESSING:
        return photo
    first_time = photo.status in (PhotoStatus.PROCESSING, PhotoStatus.FAILED)
    if photo.status == PhotoStatus.PROCESSING:
        photo.processing_attempts += 1
        session.commit()
    staging = Path(settings["STAGING_DIR"])
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=staging, prefix="process-", suffix=".orig") as local:
        try:
            for chunk in store.iter_chunks(photo.original_key):
                local.write(chunk)
        except ObjectNotFound:
            _fail(session, photo, first_time, "Das Original fehlt im Speicher.",
                  "The original is missing from storage.")
            return photo
        local.flush()
        path = Path(local.name)
        limits = decode_limits(settings)
        meta = _read_metadata_limited(photo, path, limits) if first_time else None
        try:
            renditions = sandbox.run(
                media.make_derivatives,
                path,
                limits=limits,
                max_pixels=int(settings["MAX_PIXELS"]),
                jpeg_quality=int(settings["JPEG_QUALITY"]),
                webp_quality=int(settings["WEBP_QUALITY"]),
            )
        except (sandbox.SandboxMemoryError, sandbox.SandboxTimeout, sandbox.SandboxCrashed) as error:
            _fail(session, photo, first_time, *_stopped_reason(error, limits))
            return photo
        except sandbox.SandboxRaised as error:
            if not isinstance(error.original, media.MediaError):
                # Not the file's fault but ours (a bug, a library surprise): raise, so the job is retried
                # (processing_attempts bounds that) and the traceback reaches the log.
                log.error("making the derivatives of photo %s failed:\n%s", photo.id, error.remote_traceback)
                raise
            reason = error.exc_message
            _fail(session, photo, first_time, f"Aus dieser Datei lässt sich kein Bild erzeugen ({reason}).",
                  f"No image can be made from this file ({reason}).")
            return photo

    # Store first, then point rows at the objects, then remove the replaced ones: a crash in between
    # leaves only unreferenced objects, which reconcile removes, never a row pointing at nothing.
    digests = {(r.size, r.fmt): hashlib.sha256(r.data).hexdigest() for r in renditions}
    for rendition in renditions:
        key = derivative_key(photo.sha256, rendition.size, rendition.fmt, digests[rendition.size, rendition.fmt])
        store.put_bytes(key, rendition.data, rendition.mime)
    crash_point("processing.derivatives_stored")
    # People may have edited the photo while its images were made (the upload form's rights, a quick title):
    # the row's version then no longer matches. Load it again and apply our part to what they saved.
    for _attempt in range(5):
        try:
            replaced = _record(session, photo, renditions, digests, meta, first_time)
            break
        except StaleDataError:
            session.rollback()
            photo = session.get(Photo, photo_id, populate_existing=True)
            if photo is None:
                return None  # removed meanwhile; reconcile deletes the images no row points to
    else:
        raise RuntimeError(f"photo {photo_id} kept changing while its images were recorded")
    crash_point("processing.recorded")
    delete_best_effort(store, replaced)
    return photo


def decode_limits(settings: dict[str, Any]) -> sandbox.Limits:
    return sandbox.Limits(memory_mb=int(settings["DECODE_MEMORY_MB"]), seconds=float(settings["DECODE_SECONDS"]))


def _read_metadata_limited(photo: Photo, path: Path, limits: sandbox.Limits) -> PhotoMetadata:
    """What the file says about itself; nothing (and a warning that says why) when the reader was stopped.

    Missing metadata costs the photo nothing that people cannot add, so every failure here is only noted.
    ``SandboxUnavailable`` (no process could be started) is not the file's doing and is raised: the job is
    retried."""
    try:
        return sandbox.run(read_metadata, path, limits=limits)
    except sandbox.SandboxUnavailable:
        raise
    except sandbox.SandboxError as error:
        log.warning("photo %s: metadata not read: %s", photo.id, error)
        return PhotoMetadata(warnings=[f"Metadata not read: the reader {_stopped_words(error)}"])


def _stopped_words(error: sandbox.SandboxError) -> str:
    """``error`` as the end of a sentence about the decoder, in English."""
    if isinstance(error, sandbox.SandboxRaised):
        return f"failed ({error})"
    return str(error)


def _stopped_reason(error: sandbox.SandboxError, limits: sandbox.Limits) -> tuple[str, str]:
    """German and English reason for a photo whose derivatives the limits stopped."""
    if isinstance(error, sandbox.SandboxMemoryError):
        return (f"Das Bild braucht zum Verarbeiten zu viel Speicher (mehr als {limits.memory_mb} MB) und wurde "
                "nicht verarbeitet. Eine kleinere Fassung (weniger Pixel) lässt sich hochladen.",
                f"The image needs too much memory to process (more than {limits.memory_mb} MB) and was not "
                "processed. A smaller version (fewer pixels) can be uploaded.")
    if isinstance(error, sandbox.SandboxTimeout):
        return (f"Das Verarbeiten des Bildes hat zu lange gedauert (mehr als {limits.seconds:g} Sekunden) und "
                "wurde abgebrochen. Eine kleinere Fassung lässt sich hochladen.",
                f"Processing the image took too long (more than {limits.seconds:g} seconds) and was stopped. "
                "A smaller version can be uploaded.")
    return (f"Beim Verarbeiten dieser Datei ist das Bildprogramm abgestürzt ({error}); die Datei ist "
            "vermutlich beschädigt. Bitte die Originaldatei noch einmal hochladen.",
            f"The image decoder crashed on this file ({error}); the file is probably damaged. Please upload the "
            "original file again.")


def _record(session: Session, photo: Photo, renditions: list[media.Rendition], digests: dict[tuple[str, str], str],
            meta: PhotoMetadata | None, first_time: bool) -> list[str]:
    """Points the photo at its new images, fills what the file says where people wrote nothing, moves a new photo
    on to 'submitted', and commits. Returns the keys no row uses any more."""
    replaced = _record_derivatives(photo, renditions, digests)  # the same keys, derived from the digests
    if meta is not None:
        _apply_metadata(session, photo, meta)
    if first_time:
        photo.status = PhotoStatus.SUBMITTED
        photo.processing_error = None
        detail: dict[str, Any] = {"derivatives": len(renditions)}
        if meta is not None and meta.warnings:
            detail["metadata_warnings"] = list(meta.warnings)  # why fields the file may have are empty
        session.add(AuditEvent(action="photo.processed", photo_id=photo.id, detail=detail))
    photo.processed_at = utcnow()
    session.add(OutboxEvent(topic="photo.changed", photo_id=photo.id))
    session.commit()
    return replaced


def _record_derivatives(photo: Photo, renditions: list[media.Rendition],
                        digests: dict[tuple[str, str], str]) -> list[str]:
    """Point the rows at the new objects; returns the keys no row uses any more."""
    wanted = {(r.size, r.fmt) for r in renditions}
    replaced = [d.key for d in photo.derivatives if (d.size, d.fmt) not in wanted]
    photo.derivatives[:] = [d for d in photo.derivatives if (d.size, d.fmt) in wanted]
    for rendition in renditions:
        digest = digests[rendition.size, rendition.fmt]
        key = derivative_key(photo.sha256, rendition.size, rendition.fmt, digest)
        row = photo.derivative(rendition.size, rendition.fmt)
        if row is None:
            row = Derivative(size=rendition.size, fmt=rendition.fmt)
            photo.derivatives.append(row)
        elif row.key != key:
            replaced.append(row.key)
        row.key = key
        row.width, row.height = rendition.width, rendition.height
        row.size_bytes = len(rendition.data)
        row.etag = digest[:32]
    return replaced


def _apply_metadata(session: Session, photo: Photo, meta: PhotoMetadata) -> None:
    """Typed camera columns always follow the file; words are only offered where people wrote none."""
    photo.taken_at = meta.taken_at.replace(tzinfo=None) if meta.taken_at else None
    photo.camera_make, photo.camera_model, photo.lens = meta.camera_make, meta.camera_model, meta.lens
    photo.exposure_time, photo.f_number = meta.exposure_time, meta.f_number
    photo.focal_length_mm, photo.iso = meta.focal_length_mm, meta.iso
    photo.gps_lat, photo.gps_lon, photo.orientation = meta.gps_lat, meta.gps_lon, meta.orientation
    photo.metadata_warnings = list(meta.warnings)
    photo.title = photo.title or (meta.title or "")[:300]
    photo.caption = photo.caption or meta.caption or ""
    photo.credit = photo.credit or (meta.creator or "")[:200]
    photo.copyright = photo.copyright or (meta.copyright or "")[:300]
    if not photo.tags:
        for name in dict.fromkeys(k.strip()[:100] for k in meta.keywords if k.strip()):
            tag = session.scalar(select(Tag).where(Tag.name == name)) or Tag(name=name)
            photo.tags.append(tag)


def _fail(session: Session, photo: Photo, first_time: bool, de: str, en: str) -> None:
    """A new photo that cannot be processed is marked failed, with the reason. A photo that was fine
    before keeps its status and images: remaking them failed, not the photo (a later run may succeed)."""
    log.warning("photo %s failed processing: %s", photo.id, en)
    if first_time:
        photo.status = PhotoStatus.FAILED
        photo.processing_error = f"{de} / {en}"
        session.add(AuditEvent(action="photo.failed", photo_id=photo.id, detail={"reason": en}))
    else:
        session.add(AuditEvent(action="photo.reprocessing_failed", photo_id=photo.id, detail={"reason": en}))
    session.commit()
