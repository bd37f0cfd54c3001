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
from .storage import ObjectNotFound, ObjectStore, StorageError

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
    for key in keys:
        try:
            store.delete(key)
        except StorageError:
            log.warning("could not delete %s; reconcile will", key)


@dataclass
class ReconcileReport:
    requeued: list[int] = field(default_factory=list)
    removed_rows: list[int] = field(default_factory=list)
    removed_staged: list[str] = field(default_factory=list)
    removed_objects: list[str] = field(default_factory=list)
    unfinished_writes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": self.requeued, "removed_rows": self.removed_rows,
                "removed_staged": self.removed_staged, "removed_objects": self.removed_objects,
                "unfinished_writes": self.unfinished_writes}


def reconcile(session: Session, store: ObjectStore, settings: dict[str, Any],
              enqueue: Callable[[int], None], *, dry_run: bool = False) -> ReconcileReport:
    report = ReconcileReport()
    stale = timedelta(minutes=int(settings["STALE_MINUTES"]))
    cutoff = utcnow() - stale

    # 1. Photos stuck in processing: finish them if the original is there, else they never were.
    stuck = session.scalars(select(Photo).where(Photo.status == PhotoStatus.PROCESSING,
                                                Photo.created_at < cutoff)).all()
    for photo in stuck:
        if store.exists(photo.original_key):
            report.requeued.append(photo.id)
            if not dry_run:
                enqueue(photo.id)
        else:
            report.removed_rows.append(photo.id)
            if not dry_run:
                discard_photo(session, store, photo, reason="reconcile: original missing")

    # 2. Staged files older than the cutoff belong to uploads that died.
    staging = Path(settings["STAGING_DIR"])
    if staging.is_dir():
        for path in staging.iterdir():
            if path.is_file() and time.time() - path.stat().st_mtime > stale.total_seconds():
                report.removed_staged.append(path.name)
                if not dry_run:
                    path.unlink(missing_ok=True)

    # 3. Objects no row points to (a crash between storing and committing). An object written after the
    #    cutoff may belong to an upload still in flight: it is left for a later run.
    #    Replaced derivatives whose removal failed are found the same way.
    known = set(session.scalars(select(Photo.original_key))) | set(session.scalars(select(Derivative.key)))
    for prefix in ("originals/", "derivatives/"):
        for info in store.list(prefix):
            if info.key not in known and _old(info.modified, cutoff):
                report.removed_objects.append(info.key)
    if not dry_run:
        report.unfinished_writes = store.discard_incomplete(older_than=cutoff)
        for key in report.removed_objects:
            # Look again just before deleting: the same photo may have been uploaded again meanwhile,
            # which writes the object anew and commits a row for it.
            if not _referenced(session, key) and _old(_modified(store, key), cutoff):
                store.delete(key)
    return report


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
