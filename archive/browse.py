"""What the public gallery lists: the newest published photos, the facets to browse by (association, partner city,
place, tag, year) with their counts, one page of a facet's photos, the feed and the "more from" rows.

Every query here starts from ``catalog.public_condition()`` (status published, evaluated when the query runs), so a
photo that is withdrawn, or whose consent is withdrawn, leaves every list in the same request. Each query is bounded
(a LIMIT, or a GROUP BY over a column with few values) and filters on indexed columns: ``photos.status``,
``association_id``, ``place_id``, ``taken_at``, the ``photo_tags`` key and ``tags.name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, extract, func, select
from sqlalchemy.orm import Session, selectinload

from .catalog import Page, public_condition
from .models import Association, Photo, Place, Tag, photo_tags

PER_PAGE = 48
FACET_LIMIT = 200  # places and tags on the overview: the most used ones
# The years a browse page accepts: anything else is not a year a photo was taken in (and not a 500 on the way).
FIRST_YEAR, LAST_YEAR = 1826, 2200


def _with_images(query: Any) -> Any:
    return query.options(selectinload(Photo.derivatives), selectinload(Photo.association),
                         selectinload(Photo.translations))


def _newest_first(query: Any) -> Any:
    """Newest publication first (every photo has its moment: see Photo.status_changed_at)."""
    return query.order_by(Photo.status_changed_at.desc(), Photo.id.desc())


def newest_published(session: Session, limit: int = 24) -> list[Photo]:
    """The most recently published photos."""
    return list(session.scalars(_with_images(_newest_first(select(Photo).where(public_condition()))).limit(limit)))


def feed_photos(session: Session, limit: int = 30) -> list[Photo]:
    return newest_published(session, limit)


# --------------------------------------------------------------------------------------------------------------------
# Facets with counts


@dataclass(frozen=True)
class Facet:
    """One way in: what it is called, what its address takes, how many published photos it has."""

    label: str
    key: Any
    count: int


def association_facets(session: Session) -> list[Facet]:
    """Every association (they are public), with its number of published photos (0 too)."""
    counts = dict(session.execute(select(Photo.association_id, func.count()).where(public_condition())
                                  .group_by(Photo.association_id)).all())
    return [Facet(a.name, a.slug, counts.get(a.id, 0))
            for a in session.scalars(select(Association).order_by(Association.name))]


def city_facets(session: Session) -> list[Facet]:
    """The partner cities (from the associations), with their published photos."""
    totals: dict[str, int] = {}
    for association in session.scalars(select(Association)):
        totals.setdefault(association.partner_city, 0)
    rows = session.execute(select(Association.partner_city, func.count()).join(Photo, Photo.association_id
                                                                               == Association.id)
                           .where(public_condition()).group_by(Association.partner_city))
    for city, count in rows:
        totals[city] = count
    return [Facet(city, city, count) for city, count in sorted(totals.items()) if city]


def place_facets(session: Session, limit: int = FACET_LIMIT) -> list[Facet]:
    """Places with published photos, the most photographed first."""
    count = func.count().label("n")
    rows = session.execute(select(Place, count).join(Photo, Photo.place_id == Place.id).where(public_condition())
                           .group_by(Place.id).order_by(count.desc(), Place.name).limit(limit))
    return [Facet(place.label, place.id, n) for place, n in rows]


def tag_facets(session: Session, limit: int = FACET_LIMIT) -> list[Facet]:
    """Tags on published photos, the most used first (a keyword only on unpublished photos is not shown)."""
    count = func.count().label("n")
    rows = session.execute(select(Tag.name, count).join(photo_tags, photo_tags.c.tag_id == Tag.id)
                           .join(Photo, Photo.id == photo_tags.c.photo_id).where(public_condition())
                           .group_by(Tag.id, Tag.name).order_by(count.desc(), Tag.name).limit(limit))
    return [Facet(name, name, n) for name, n in rows]


def year_facets(session: Session) -> list[Facet]:
    """The years photos were taken in, newest first."""
    year = extract("year", Photo.taken_at).label("year")
    rows = session.execute(select(year, func.count()).where(public_condition(), Photo.taken_at.is_not(None))
                           .group_by(year).order_by(year.desc()))
    return [Facet(str(int(y)), int(y), n) for y, n in rows if y is not None]


# --------------------------------------------------------------------------------------------------------------------
# One facet's photos, a page at a time


def page_where(session: Session, condition: ColumnElement[bool], number: int, per_page: int | None = None,
               join_tags: bool = False) -> Page:
    """One page of the published photos that meet ``condition``, newest publication first."""
    per_page = per_page or PER_PAGE
    query = select(Photo).where(public_condition(), condition)
    if join_tags:
        query = query.join(photo_tags, photo_tags.c.photo_id == Photo.id).join(Tag, Tag.id == photo_tags.c.tag_id)
    number = max(number, 1)
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(Photo.id).subquery())) or 0
    photos = session.scalars(_with_images(_newest_first(query)).limit(per_page).offset((number - 1) * per_page))
    return Page(list(photos), total, number, per_page)


def association_by_slug(session: Session, slug: str) -> Association | None:
    return session.scalar(select(Association).where(Association.slug == slug))


def city_exists(session: Session, city: str) -> bool:
    return session.scalar(select(Association.id).where(Association.partner_city == city).limit(1)) is not None


def in_city(city: str) -> ColumnElement[bool]:
    return Photo.association_id.in_(select(Association.id).where(Association.partner_city == city))


def year_range(year: int) -> tuple[datetime, datetime] | None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return None
    return datetime(year, 1, 1), datetime(year + 1, 1, 1)


def in_year(year: int) -> ColumnElement[bool]:
    """A range on ``taken_at`` (indexed), not a function of it."""
    bounds = year_range(year)
    assert bounds is not None
    return (Photo.taken_at >= bounds[0]) & (Photo.taken_at < bounds[1])


# --------------------------------------------------------------------------------------------------------------------
# The photo page's rows


def more_from_place(session: Session, photo: Photo, limit: int = 6) -> list[Photo]:
    if photo.place_id is None:
        return []
    return _more(session, photo, Photo.place_id == photo.place_id, limit)


def more_from_association(session: Session, photo: Photo, limit: int = 6) -> list[Photo]:
    return _more(session, photo, Photo.association_id == photo.association_id, limit)


def _more(session: Session, photo: Photo, condition: ColumnElement[bool], limit: int) -> list[Photo]:
    query = select(Photo).where(public_condition(), condition, Photo.id != photo.id)
    return list(session.scalars(_with_images(_newest_first(query)).limit(limit)))
