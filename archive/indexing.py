"""Keeps the search index in step with the database: the outbox's changes are applied in order by one
writer (the job worker); `brucken reindex` rebuilds everything; `brucken search-check` compares."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from .faults import crash_point
from .models import Association, OutboxEvent, Photo, PhotoStatus
from .search import SearchDoc, SearchIndex, SearchUnavailable, Viewer

BATCH = 500

log = logging.getLogger(__name__)


def doc_for(photo: Photo) -> SearchDoc:
    """What search knows of a photo: its words in every language (German first), place, licence and facets."""
    from .workflow import licence_label

    other_titles = [t.title for t in photo.translations if t.title]
    other_captions = [t.caption for t in photo.translations if t.caption]
    return SearchDoc(
        id=photo.id,
        status=str(photo.status),
        association=photo.association.slug,
        association_name=photo.association.name,
        partner_city=photo.association.partner_city,
        taken_at=photo.taken_at,
        created_at=photo.created_at,
        title=" · ".join([photo.title or photo.original_filename, *other_titles]),
        caption="\n".join(part for part in (photo.caption, *other_captions) if part),
        tags=tuple(tag.name for tag in photo.tags),
        photographer=photo.credit,
        place=photo.place.label if photo.place else "",
        licence=licence_label(photo.licence),
    )


def not_yet_hidden(session: Session, viewer: Viewer, position: int) -> set[int]:
    """Photos the index still shows but ``viewer`` may no longer see: changed after ``position`` (the last outbox
    event the index applied) and now unpublished or gone. Search leaves them out until the writer catches up, so
    an unpublished photo leaves public search in the very request that unpublished it."""
    # Neither "photo_id IS NOT NULL" nor DISTINCT here: with either, SQLite's planner (no statistics) walks the whole
    # outbox through ix_outbox_photo_id instead of the few events after ``position``. NULL never matches IN, and
    # the set drops repeats.
    changed = select(OutboxEvent.photo_id).where(OutboxEvent.id > position).scalar_subquery()
    # In SQL, not as a list of ids: after a bulk change the outbox may name thousands of photos.
    gone = set(session.scalars(select(OutboxEvent.photo_id).where(OutboxEvent.id > position)
                               .where(~OutboxEvent.photo_id.in_(select(Photo.id))))) - {None}
    hidden = select(Photo.id).join(Photo.association).where(Photo.id.in_(changed),
                                                            Photo.status != PhotoStatus.PUBLISHED)
    if viewer.association:
        hidden = hidden.where(Association.slug != viewer.association)
    return gone | set(session.scalars(hidden))


def _load(session: Session, ids: list[int]) -> dict[int, Photo]:
    photos = session.scalars(select(Photo).where(Photo.id.in_(ids))
                             .options(selectinload(Photo.association), selectinload(Photo.tags),
                                      selectinload(Photo.place), selectinload(Photo.translations)))
    return {photo.id: photo for photo in photos}


def apply_outbox(session: Session, index: SearchIndex, batch: int = BATCH) -> int:
    """Apply every outbox event after the index's position, oldest first; returns how many were applied.
    Each batch is one index commit that also records the position, so a writer killed mid-way repeats at
    most one batch, and repeating is harmless (upserts and deletes of the current database state)."""
    if not _readable(index):
        # Lost or damaged: rebuild from the database right here (search answers 503 meanwhile), then
        # carry on with whatever the outbox holds beyond the rebuild's position.
        log.warning("search index missing or unreadable: rebuilding it from the database")
        rebuild(session, index)
    applied = 0
    while True:
        events = session.scalars(select(OutboxEvent).where(OutboxEvent.id > index.position())
                                 .order_by(OutboxEvent.id).limit(batch)).all()
        if not events:
            return applied
        ids = sorted({e.photo_id for e in events if e.photo_id is not None})
        photos = _load(session, ids)
        index.apply(((i, doc_for(photos[i]) if i in photos else None) for i in ids), position=events[-1].id)
        crash_point("indexing.applied")
        applied += len(events)
        session.rollback()  # end the read transaction: the next batch sees newer commits


def _readable(index: SearchIndex) -> bool:
    """Opens, and no reader found it unreadable: a garbled segment may open fine and fail only when searched."""
    try:
        index.position()
    except SearchUnavailable:
        return False
    return index.exists() and not index.damaged()


def _all_docs(session: Session) -> Iterator[SearchDoc]:
    last = 0
    while True:
        ids = list(session.scalars(select(Photo.id).where(Photo.id > last).order_by(Photo.id).limit(BATCH)))
        if not ids:
            return
        photos = _load(session, ids)
        yield from (doc_for(photos[i]) for i in ids if i in photos)
        last = ids[-1]


def rebuild(session: Session, index: SearchIndex) -> int:
    """The whole index anew from the database. The position is taken first: changes committed while the
    rebuild runs are applied again afterwards by the outbox, which is harmless."""
    position = session.scalar(select(func.max(OutboxEvent.id))) or 0
    return index.rebuild(_all_docs(session), position=position)


@dataclass
class IndexDifferences:
    missing: list[int] = field(default_factory=list)  # in the database, not in the index
    stale: list[int] = field(default_factory=list)  # indexed with other contents than the database has
    extra: list[int] = field(default_factory=list)  # in the index, no longer in the database

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def compare(session: Session, index: SearchIndex) -> IndexDifferences:
    indexed = index.stamps()
    differences = IndexDifferences()
    for doc in _all_docs(session):
        stamp = indexed.pop(doc.id, None)
        if stamp is None:
            differences.missing.append(doc.id)
        elif stamp != doc.stamp():
            differences.stale.append(doc.id)
    differences.extra = sorted(indexed)
    return differences
