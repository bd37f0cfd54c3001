"""After a fault: do the database, the object store, the staging disk and the search index agree?

``assert_consistent(app)`` checks the invariants of the reliability catalogue (../shared/reference/reliability.md,
section 8) on an app's real services, independently of the code that is supposed to keep them:

* I1: every photo has its original, with the SHA-256 its row records; every photo past processing has all
  the derivatives its rows name, and each of them exists.
* I3: every object under ``originals/`` and ``derivatives/`` belongs to a row (call it after ``reconcile``
  with a zero grace period; ``orphans_allowed`` relaxes this for checks taken mid-way).
* I4: after the outbox is applied, the index holds exactly what the database says (``indexing.compare``).
* I5: no file is left on the staging disk, except the records of finished chunked uploads, which
  archive/resumable.py keeps on purpose for a while (a client whose connection dropped during the last chunk
  learns its result from them).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from archive.indexing import apply_outbox, compare
from archive.models import Derivative, Photo, PhotoStatus, db
from archive.services import get_search_index, get_store
from archive.storage import ObjectNotFound


def problems(app: Flask, *, orphans_allowed: bool = False, index: bool = True) -> list[str]:
    """Every disagreement found, in words; empty when all agree."""
    found: list[str] = []
    with app.app_context():
        store = get_store()
        photos = db.session.scalars(select(Photo)).all()
        for photo in photos:
            try:
                digest = hashlib.sha256()
                for chunk in store.iter_chunks(photo.original_key):
                    digest.update(chunk)
            except ObjectNotFound:
                found.append(f"I1: photo {photo.id} ({photo.status}) has no original {photo.original_key}")
                continue
            if digest.hexdigest() != photo.sha256:
                found.append(f"I1: photo {photo.id}: the original's SHA-256 differs from the row's")
            if photo.status not in (PhotoStatus.PROCESSING, PhotoStatus.FAILED) and not photo.derivatives:
                found.append(f"I1: photo {photo.id} is {photo.status} without derivatives")
            found.extend(f"I1: photo {photo.id}: derivative {d.key} is missing"
                         for d in photo.derivatives if not store.exists(d.key))
        if not orphans_allowed:
            referenced = {p.original_key for p in photos}
            referenced |= set(db.session.scalars(select(Derivative.key)))
            for prefix in ("originals/", "derivatives/"):
                found.extend(f"I3: object {info.key} belongs to no row"
                             for info in store.list(prefix) if info.key not in referenced)
        if index:
            search = get_search_index()
            apply_outbox(db.session, search)
            differences = compare(db.session, search)
            if not differences.clean:
                found.append(f"I4: index differs from the database: missing {differences.missing}, "
                             f"stale {differences.stale}, extra {differences.extra}")
        db.session.remove()
    staging = Path(app.config["STAGING_DIR"])
    if staging.exists():
        found.extend(f"I5: file left on the staging disk: {path.relative_to(staging)}"
                     for path in staging.rglob("*") if path.is_file() and not _finished_upload_record(path))
    return found


def _finished_upload_record(path: Path) -> bool:
    """``<id>.json`` of a chunked upload that holds its result, or that upload's ``<id>.lock``."""
    record = path.with_suffix(".json")
    if path.suffix not in (".json", ".lock") or not record.is_file():
        return False
    try:
        return json.loads(record.read_text()).get("result") is not None
    except (OSError, ValueError, AttributeError):
        return False


def assert_consistent(app: Flask, *, orphans_allowed: bool = False, index: bool = True) -> None:
    found = problems(app, orphans_allowed=orphans_allowed, index=index)
    assert not found, "database, object store, staging disk and index disagree:\n" + "\n".join(found)
