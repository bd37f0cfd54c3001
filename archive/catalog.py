"""Which photos a page lists: the public gallery and an association's grid. One place for the queries,
so the rule of who sees what (archive.auth) and the lists never drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, selectinload

from .models import Association, Photo, PhotoStatus


@dataclass(frozen=True)
class Page:
    photos: list[Photo]
    total: int
    number: int
    per_page: int

    @property
    def count(self) -> int:
        return max((self.total + self.per_page - 1) // self.per_page, 1)

    def still_processing(self, since: datetime) -> bool:
        return any(being_processed(photo, since) for photo in self.photos)


def being_processed(photo: Photo, since: datetime) -> bool:
    """Whether the photo's images are being made right now: pages refresh for it. One stuck since before
    `since` is left to reconcile, and the page stops asking."""
    return photo.status == PhotoStatus.PROCESSING and photo.created_at > since


def public_condition() -> ColumnElement[bool]:
    """What makes a photo public: published at the moment the query runs. Every public list filters by it, so a
    withdrawn photo leaves them all at once (the photo page and the images ask archive.auth.can_view, the same rule)."""
    return Photo.status == PhotoStatus.PUBLISHED


def public_photos(session: Session, limit: int = 48) -> list[Photo]:
    """The newest photos visitors may see."""
    query = (select(Photo).where(public_condition())
             .options(selectinload(Photo.derivatives), selectinload(Photo.association))
             .order_by(Photo.created_at.desc(), Photo.id.desc()).limit(limit))
    return list(session.scalars(query))


def grid_association(session: Session, user: Any, slug: str | None) -> Association | None:
    """Whose photos a logged-in person's grid shows: members always their own association; curators and
    admins the one they choose, or all (None). Raises LookupError for an unknown slug."""
    if not user.sees_everything:
        if user.association is None:
            raise PermissionError("a member without an association")
        return user.association
    if not slug:
        return None
    association = session.scalar(select(Association).where(Association.slug == slug))
    if association is None:
        raise LookupError(slug)
    return association


def association_photos(session: Session, association: Association | None, number: int,
                       per_page: int = 60) -> Page:
    """Every photo of an association (all associations for None), newest first, one page of them."""
    query: Select[tuple[Photo]] = select(Photo)
    if association is not None:
        query = query.where(Photo.association_id == association.id)
    number = max(number, 1)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    photos = session.scalars(query.options(selectinload(Photo.derivatives))
                             .order_by(Photo.created_at.desc(), Photo.id.desc())
                             .limit(per_page).offset((number - 1) * per_page))
    return Page(list(photos), total, number, per_page)
