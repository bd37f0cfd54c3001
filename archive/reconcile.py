"""Finishing or cleaning what a crash left half-done: photos stuck in processing, staged files,
objects no row points to. Also the one way a photo leaves the archive with everything it owns."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEvent, Derivative, OutboxEvent, Photo, PhotoStatus, utcnow
from .resumable import remove_abandoned
from .storage import ObjectNotFound, ObjectStore, StorageError, delete_best_effort

log = logging.getLogger(__name__)


def discard_photo(session: Session, store: ObjectStore, photo: Photo, *, reason: str,
                  actor_id: int | None = None) -> None:
    """Remove a photo, its derivatives and its original; the row goes first so nothing points at a gap."""
    keys = [photo.original_key, *(d.key for d in photo.derivatives)]
    session.add(AuditEvent(actor_id=actor_id, action="photo.discarded", photo_id=photo.id,
                           detail={"reason": reason, "sha256": photo.sha256}))
    session.add(OutboxEvent(topic="photo.deleted", photo_id=photo.id))
    session.delete(photo)
    session.commit()
    delete_best_effort(store, keys)


@dataclass
class ReconcileReport:
    requeued: list[int] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)
    removed_rows: list[int] = field(default_factory=list)
    removed_staged: list[str] = field(default_factory=list)
    removed_objects: list[str] = field(default_factory=list)
    unfinished_writes: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": self.requeued, "gave_up": self.gave_up, "removed_rows": self.removed_rows,
                "removed_staged": self.removed_staged, "removed_objects": self.removed_objects,
                "unfinished_writes": self.unfinished_writes, "problems": self.problems}


MAX_ATTEMPTS = 5


def reconcile(session: Session, store: ObjectStore, settings: dict[str, Any],
              enqueue: Callable[[int], None], *, dry_run: bool = False) -> ReconcileReport:
    """Each step stands alone: one that fails (the store is down, a service lacks a call) is reported
    and the others still run."""
    report = ReconcileReport()
    stale = timedelta(minutes=int(settings["STALE_MINUTES"]))
    cutoff = utcnow() - stale
    steps = (
        ("stuck photos", lambda: _stuck_photos(session, store, enqueue, cutoff, report, dry_run)),
        ("staged files", lambda: _staged_files(Path(settings["STAGING_DIR"]), stale, report, dry_run)),
        ("abandoned chunked uploads", lambda: _abandoned_uploads(settings, report, dry_run)),
        ("unfinished writes", lambda: _unfinished_writes(store, cutoff, report, dry_run)),
        ("orphaned objects", lambda: _orphaned_objects(session, store, cutoff, report, dry_run)),
    )
    for name, step in steps:
        try:
            step()
        except StorageError as error:
            session.rollback()
            log.warning("reconcile: %s: %s", name, error)
            report.problems.append(f"{name}: {error}")
    return report


def _stuck_photos(session: Session, store: ObjectStore, enqueue: Callable[[int], None], cutoff: datetime,
                  report: ReconcileReport, dry_run: bool) -> None:
    """Finish them if the original is there (giving up after a few tries), else they never were."""
    stuck = session.scalars(select(Photo).where(Photo.status == PhotoStatus.PROCESSING,
                                                Photo.created_at < cutoff)).all()
    for photo in stuck:
        if not store.exists(photo.original_key):
            report.removed_rows.append(photo.id)
            if not dry_run:
                discard_photo(session, store, photo, reason="reconcile: original missing")
        elif photo.processing_attempts >= MAX_ATTEMPTS:
            report.gave_up.append(photo.id)
            if not dry_run:
                photo.status = PhotoStatus.FAILED
                photo.processing_error = (f"Die Verarbeitung ist {photo.processing_attempts}-mal gescheitert. / "
                                          f"Processing failed {photo.processing_attempts} times.")
                session.add(AuditEvent(action="photo.failed", photo_id=photo.id,
                                       detail={"reason": "reconcile: too many attempts"}))
                session.commit()
        else:
            report.requeued.append(photo.id)
            if not dry_run:
                enqueue(photo.id)


def _staged_files(staging: Path, stale: timedelta, report: ReconcileReport, dry_run: bool) -> None:
    """Staged files older than the cutoff belong to uploads that died."""
    if not staging.is_dir():
        return
    for path in staging.iterdir():
        if path.is_file() and time.time() - path.stat().st_mtime > stale.total_seconds():
            report.removed_staged.append(path.name)
            if not dry_run:
                path.unlink(missing_ok=True)


def _abandoned_uploads(settings: dict[str, Any], report: ReconcileReport, dry_run: bool) -> None:
    """Chunked uploads nobody resumed within UPLOAD_RESUME_HOURS (they are also cleared at each new upload)."""
    if dry_run:
        return
    hours = float(settings["UPLOAD_RESUME_HOURS"])
    for upload_id in remove_abandoned(Path(settings["STAGING_DIR"]), older_than=hours * 3600):
        report.removed_staged.append(f"uploads/{upload_id}")


def _unfinished_writes(store: ObjectStore, cutoff: datetime, report: ReconcileReport, dry_run: bool) -> None:
    if not dry_run:
        report.unfinished_writes = store.discard_incomplete(older_than=cutoff)


def _orphaned_objects(session: Session, store: ObjectStore, cutoff: datetime, report: ReconcileReport,
                      dry_run: bool) -> None:
    """Objects no row points to (a crash between storing and committing, a replaced derivative whose
    removal failed). An object written after the cutoff may belong to an upload still in flight: it is
    left for a later run. Only what is really removed is reported (a dry run reports the candidates)."""
    known = set(session.scalars(select(Photo.original_key))) | set(session.scalars(select(Derivative.key)))
    candidates = [info.key for prefix in ("originals/", "derivatives/") for info in store.list(prefix)
                  if info.key not in known and _old(info.modified, cutoff)]
    if dry_run:
        report.removed_objects.extend(candidates)
        return
    for key in candidates:
        # Look again just before deleting: the same photo may have been uploaded again meanwhile,
        # which writes the object anew and commits a row for it.
        if not _referenced(session, key) and _old(_modified(store, key), cutoff):
            store.delete(key)
            report.removed_objects.append(key)


def _old(modified: datetime | None, cutoff: datetime) -> bool:
    return modified is not None and modified < cutoff


def _modified(store: ObjectStore, key: str) -> datetime | None:
    try:
        return store.stat(key).modified
    except ObjectNotFound:
        return None


def _referenced(session: Session, key: str) -> bool:
    return (session.scalar(select(Photo.id).where(Photo.original_key == key)) is not None
            or session.scalar(select(Derivative.id).where(Derivative.key == key)) is not None)
