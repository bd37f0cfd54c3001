"""Public copies of published photos' thumbnails and previews, for a CDN (MEDIA_CDN_URL; off by default).

With the CDN on (MEDIA_CDN_URL set and STORAGE=s3), each thumbnail and preview of a *published* photo is copied,
inside the S3 service, to a key under S3_PUBLIC_PREFIX that anyone may read (public-read ACL; the bucket itself
stays private, so everything else still needs a signature):

    <prefix><group>/<name>.<ext>     group = HMAC(SECRET_KEY, "photo:" + the photo's SHA-256)[:20 hex]
                                     name  = HMAC(SECRET_KEY, derivative key)[:32 hex]

Nobody can guess a key (it needs SECRET_KEY), and none reveals the original's SHA-256. All copies of one photo share
a group, so making a photo's copies match its current state is one listing: copies it should not have (no longer
published, consent withdrawn, deleted, or images remade) are deleted, missing ones are made.

``sync_public_media`` follows the outbox (every photo change writes an event) from its own cursor
(OutboxCursor "public-media"); the job worker runs it. Each run is idempotent: it makes S3 match the database
as it is now, so repeating a batch after a crash is harmless. On PostgreSQL an event id may become visible after a
higher one (two transactions committing out of order); the cursor never passes such a gap until it is older than
``GAP_GRACE`` (then it was a rolled-back transaction), so no change is skipped. ``resync_all`` makes every copy
match the database in one pass; it runs by itself when the cursor does not exist yet (the CDN was just switched
on), and removes every public copy when the CDN was switched off.

Access: radosgw (Ceph 16) and MinIO accept the public-read ACL on each copy (tested against radosgw). On an AWS
bucket with ACLs disabled ("bucket owner enforced") the copy is refused with AccessControlListNotSupported; there,
give the prefix a bucket policy instead (Effect Allow, Principal "*", Action s3:GetObject, Resource
arn:aws:s3:::<bucket>/public/*) - nothing else of the bucket becomes readable.

A deleted photo has no row any more: its group is found from the audit event ``photo.discarded`` (which keeps
the SHA-256). Anything else left over is removed by ``resync_all``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from .models import AuditEvent, OutboxCursor, OutboxEvent, Photo, PhotoStatus, utcnow
from .storage import ObjectStore, S3Store, StorageError, validate_key

log = logging.getLogger(__name__)

CURSOR = "public-media"
PUBLIC_SIZES = frozenset({"thumb", "preview"})
CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"jpeg": "jpg", "webp": "webp"}
BATCH = 200
GAP_GRACE = timedelta(seconds=120)
_DERIVATIVE_KEY = re.compile(r"derivatives/[0-9a-f]{2}/([0-9a-f]{64})/[^/]+\.(jpg|webp)")
_COPY_NAME = re.compile(r"[0-9a-f]{20}/[0-9a-f]{32}\.(jpg|webp)")
# Keys the archive itself writes: a public prefix among them would publish (or, on cleanup, delete) them.
_RESERVED = ("originals/", "derivatives/", "exports/")


def enabled(config: Mapping[str, Any]) -> bool:
    """The CDN option is on: MEDIA_CDN_URL set and the photos on S3."""
    return bool(str(config.get("MEDIA_CDN_URL") or "").strip()) and str(config.get("STORAGE") or "") == "s3"


def public_prefix(config: Mapping[str, Any]) -> str:
    prefix = str(config.get("S3_PUBLIC_PREFIX") or "").strip().strip("/")
    if not prefix:
        raise StorageError("S3_PUBLIC_PREFIX must not be empty: the public copies need a folder of their own")
    prefix += "/"
    validate_key(prefix.rstrip("/"))
    if any(prefix.startswith(r) or r.startswith(prefix) for r in _RESERVED):
        raise StorageError(f"S3_PUBLIC_PREFIX {prefix!r} overlaps the archive's own keys ({', '.join(_RESERVED)})")
    return prefix


def _mac(config: Mapping[str, Any], message: str, length: int) -> str:
    secret = str(config.get("SECRET_KEY") or "")
    if not secret:
        raise StorageError("public copies need SECRET_KEY (their keys are derived from it)")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()[:length]


def _group(config: Mapping[str, Any], photo_sha256: str) -> str:
    return f"{public_prefix(config)}{_mac(config, 'photo:' + photo_sha256, 20)}/"


def public_key(config: Mapping[str, Any], derivative_key: str) -> str | None:
    """The key of a derivative's public copy, or None for a key that is not a derivative's."""
    match = _DERIVATIVE_KEY.fullmatch(derivative_key)
    if match is None:
        return None
    return f"{_group(config, match.group(1))}{_mac(config, derivative_key, 32)}.{match.group(2)}"


def public_url(config: Mapping[str, Any], derivative_key: str) -> str | None:
    """Where the CDN serves a derivative's public copy; None when the CDN is off. Says nothing about whether the
    copy exists (see ``copy_exists``) or whether the photo is published (the caller checks)."""
    if not enabled(config):
        return None
    key = public_key(config, derivative_key)
    if key is None:
        return None
    return f"{str(config['MEDIA_CDN_URL']).strip().rstrip('/')}/{key[len(public_prefix(config)):]}"


# -- does the copy exist? (asked by the media route; cached briefly, positive answers only) -----------------

_EXISTS_SECONDS = 30.0
_EXISTS_MAX = 20_000
_exists_cache: dict[str, float] = {}
_exists_lock = threading.Lock()


def copy_exists(store: ObjectStore, config: Mapping[str, Any], derivative_key: str) -> bool:
    """The derivative's public copy is there. A yes is remembered for half a minute (one HEAD per image and
    process, not per request); the caller has checked that the photo is published, in this request."""
    key = public_key(config, derivative_key)
    if key is None:
        return False
    remembered = f"{store!r} {key}"  # the bucket too: one process may serve several archives (tests do)
    now = time.monotonic()
    with _exists_lock:
        if _exists_cache.get(remembered, 0.0) > now:
            return True
    try:
        present = store.exists(key)
    except StorageError as error:
        log.warning("cannot tell whether %s exists (%s); serving through the app", key, error)
        return False
    if present:
        with _exists_lock:
            if len(_exists_cache) >= _EXISTS_MAX:
                _exists_cache.clear()
            _exists_cache[remembered] = now + _EXISTS_SECONDS
    return present


def _forget(store: ObjectStore, keys: Iterable[str]) -> None:
    with _exists_lock:
        for key in keys:
            _exists_cache.pop(f"{store!r} {key}", None)


# -- making the copies match the database ---------------------------------------------------------------------


@dataclass
class _Wanted:
    """The public copies one photo should have now: public key -> (derivative key, content type)."""

    group: str
    copies: dict[str, tuple[str, str]]


def cache_control(config: Mapping[str, Any]) -> str:
    """As the app answers for published images (MEDIA_MAX_AGE): with 0 the CDN asks S3 again each time, so a
    copy that was deleted stops being served at once."""
    max_age = int(config.get("MEDIA_MAX_AGE") or 0)
    return f"public, max-age={max_age}" if max_age > 0 else "public, no-cache"


def _wanted(config: Mapping[str, Any], photo: Photo) -> _Wanted:
    copies: dict[str, tuple[str, str]] = {}
    if photo.status == PhotoStatus.PUBLISHED:
        for derivative in photo.derivatives:
            key = public_key(config, derivative.key) if derivative.size in PUBLIC_SIZES else None
            if key is not None and derivative.fmt in CONTENT_TYPES:
                copies[key] = (derivative.key, CONTENT_TYPES[derivative.fmt])
    return _Wanted(_group(config, photo.sha256), copies)


def _deleted_photo_group(session: Session, config: Mapping[str, Any], photo_id: int) -> str | None:
    """A photo without a row: its SHA-256 is kept in the audit event of its removal."""
    details = session.scalars(select(AuditEvent.detail).where(AuditEvent.photo_id == photo_id,
                                                              AuditEvent.action == "photo.discarded"))
    for detail in details:
        sha = str((detail or {}).get("sha256") or "")
        if re.fullmatch(r"[0-9a-f]{64}", sha):
            return _group(config, sha)
    return None


def _s3(store: ObjectStore) -> S3Store:
    if not isinstance(store, S3Store):
        raise StorageError("public copies for MEDIA_CDN_URL need STORAGE=s3")
    return store


def _apply(store: S3Store, config: Mapping[str, Any], present: set[str], wanted: dict[str, tuple[str, str]]) -> int:
    """Delete first (a copy that must go is the urgent part), then make the missing ones."""
    changes = 0
    stale = sorted(present - set(wanted))
    _forget(store, stale)
    for key in stale:
        store.delete(key)
        changes += 1
    for key in sorted(set(wanted) - present):
        source, content_type = wanted[key]
        store.put_public_copy(source, key, content_type=content_type, cache_control=cache_control(config))
        changes += 1
    return changes


def _sync_photos(session: Session, store: S3Store, config: Mapping[str, Any], photo_ids: list[int]) -> int:
    photos = {p.id: p for p in session.scalars(select(Photo).where(Photo.id.in_(photo_ids))
                                                .options(selectinload(Photo.derivatives)))}
    changes = 0
    for photo_id in photo_ids:
        photo = photos.get(photo_id)
        if photo is not None:
            wanted = _wanted(config, photo)
            group, copies = wanted.group, wanted.copies
        else:
            found = _deleted_photo_group(session, config, photo_id)
            if found is None:
                continue  # never had copies, or only resync_all can tell
            group, copies = found, {}
        present = {info.key for info in store.list(group)}
        changes += _apply(store, config, present, copies)
    return changes


def _cursor(session: Session) -> OutboxCursor | None:
    return session.get(OutboxCursor, CURSOR)


def _move_cursor(session: Session, position: int) -> None:
    """Forward only: two workers syncing at once must not move it back."""
    moved = session.execute(update(OutboxCursor).where(OutboxCursor.name == CURSOR, OutboxCursor.position < position)
                            .values(position=position, updated_at=utcnow()))
    if getattr(moved, "rowcount", 0) == 0 and _cursor(session) is None:
        session.add(OutboxCursor(name=CURSOR, position=position, updated_at=utcnow()))
    try:
        session.commit()
    except IntegrityError:  # another worker made the row at the same moment: its position is as good
        session.rollback()


def _safe_position(position: int, events: list[OutboxEvent]) -> int:
    """How far the cursor may move: past every event seen, but not past a gap in the ids that is younger than
    GAP_GRACE (an event still being committed may fill it)."""
    cutoff = utcnow() - GAP_GRACE
    for event in events:
        if event.id != position + 1 and event.at > cutoff:
            break
        position = event.id
    return position


def sync_public_media(session: Session, store: ObjectStore, config: Mapping[str, Any], *, batch: int = BATCH) -> int:
    """Follow the outbox from the "public-media" cursor and make each changed photo's public copies match its
    current state. Returns how many copies were made or deleted. Does nothing when the CDN is off and never was."""
    cursor = _cursor(session)
    if not enabled(config):
        if cursor is not None and isinstance(store, S3Store):
            return resync_all(session, store, config)  # switched off: take every copy offline
        return 0
    s3 = _s3(store)
    if cursor is None:
        return resync_all(session, s3, config)
    position, changes = cursor.position, 0
    while True:
        events = list(session.scalars(select(OutboxEvent).where(OutboxEvent.id > position)
                                      .order_by(OutboxEvent.id).limit(batch)))
        if not events:
            return changes
        photo_ids = sorted({e.photo_id for e in events if e.photo_id is not None})
        changes += _sync_photos(session, s3, config, photo_ids)
        safe = _safe_position(position, events)
        if safe > position:
            _move_cursor(session, safe)
        session.rollback()  # end the read transaction: the next batch sees newer commits
        if safe < events[-1].id:
            return changes  # a young gap: the events after it were applied, and are looked at again next time
        position = safe


def resync_all(session: Session, store: ObjectStore, config: Mapping[str, Any]) -> int:
    """Make every public copy match the database in one pass (also after SECRET_KEY changed). With the CDN off,
    remove them all and forget the cursor. Returns how many copies were made or deleted."""
    s3 = _s3(store)
    prefix = public_prefix(config)
    position = session.scalar(select(func.max(OutboxEvent.id))) or 0  # first: later changes are synced again
    # Only keys this module makes: anything else someone put under the prefix is not ours to delete.
    present = {info.key for info in s3.list(prefix) if _COPY_NAME.fullmatch(info.key[len(prefix):])}
    wanted: dict[str, tuple[str, str]] = {}
    if enabled(config):
        published = session.scalars(select(Photo).where(Photo.status == PhotoStatus.PUBLISHED)
                                    .options(selectinload(Photo.derivatives)))
        for photo in published:
            wanted.update(_wanted(config, photo).copies)
    changes = _apply(s3, config, present, wanted)
    if enabled(config):
        _move_cursor(session, position)
    else:
        session.query(OutboxCursor).filter(OutboxCursor.name == CURSOR).delete()
        session.commit()
    log.info("public copies resynced: %s made or deleted", changes)
    return changes


__all__ = ["CURSOR", "copy_exists", "enabled", "public_key", "public_url", "resync_all", "sync_public_media"]
