"""The lists pages show: pagination, the public filter, and whose grid a person sees."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from archive.catalog import association_photos, grid_association, public_photos
from archive.models import Association, Photo, PhotoStatus, User, db, utcnow


def add_photos(slug: str, count: int, status: PhotoStatus = PhotoStatus.SUBMITTED) -> list[int]:
    association = db.session.scalar(select(Association).where(Association.slug == slug))
    photos = [Photo(association_id=association.id, status=status,
                    sha256=hashlib.sha256(f"{slug}{status}{i}".encode()).hexdigest(),
                    original_key=f"originals/x/{slug}{i}", format="jpeg", mime_type="image/jpeg", size_bytes=1,
                    width=1, height=1) for i in range(count)]
    db.session.add_all(photos)
    db.session.commit()
    return [p.id for p in photos]


def test_pages_of_an_association_newest_first(app: Flask) -> None:
    ids = add_photos("pasadena", 61)
    add_photos("lorient", 3)
    pasadena = db.session.scalar(select(Association).where(Association.slug == "pasadena"))
    first = association_photos(db.session, pasadena, 1)
    second = association_photos(db.session, pasadena, 2)
    assert (first.total, first.count, len(first.photos), len(second.photos)) == (61, 2, 60, 1)
    assert second.photos[0].id == ids[0]  # the oldest comes last
    assert association_photos(db.session, None, 1).total == 64
    assert association_photos(db.session, pasadena, -3).number == 1


def test_only_published_photos_are_public(app: Flask) -> None:
    published = add_photos("ruanda", 2, PhotoStatus.PUBLISHED)
    add_photos("ruanda", 2)
    add_photos("ruanda", 1, PhotoStatus.WITHDRAWN)
    assert sorted(p.id for p in public_photos(db.session)) == published


def test_whose_grid(app: Flask, people: dict[str, Any]) -> None:
    member, curator = people["member"], people["curator"]
    assert grid_association(db.session, member, "lorient").slug == "pasadena"  # members: always their own
    assert grid_association(db.session, curator, None) is None  # all associations
    assert grid_association(db.session, curator, "lorient").slug == "lorient"
    with pytest.raises(LookupError):
        grid_association(db.session, curator, "atlantis")
    with pytest.raises(PermissionError):
        grid_association(db.session, User(username="x", association_id=None), None)


def test_a_stuck_photo_stops_the_refresh(app: Flask) -> None:
    add_photos("havering", 1, PhotoStatus.PROCESSING)
    page = association_photos(db.session, None, 1)
    assert page.still_processing(since=utcnow().replace(year=2000))
    assert not page.still_processing(since=utcnow())
