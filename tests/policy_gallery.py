"""Access rules for the public gallery: the browse pages and the feed are for everyone (they list only published
photos). The URL values name things the matrix's published photo has: its association, partner city, place
(``place_id`` comes from the matrix itself), a tag and the year it was taken."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from archive.models import Photo, PhotoStatus, Tag, db
from tests.access_rules import Rule, public

POLICY: dict[tuple[str, str], Rule] = {
    ("gallery.overview", "GET"): public,
    ("gallery.association", "GET"): public,
    ("gallery.city", "GET"): public,
    ("gallery.place", "GET"): public,
    ("gallery.tag", "GET"): public,
    ("gallery.year", "GET"): public,
    ("gallery.feed", "GET"): public,
}


def values(users: dict[str, int], photos: dict[PhotoStatus, int]) -> dict[str, Any]:
    photo = db.session.get(Photo, photos[PhotoStatus.PUBLISHED])
    tag = db.session.scalar(select(Tag).where(Tag.name == "Rheinufer"))
    if tag is None:
        tag = Tag(name="Rheinufer")
        db.session.add(tag)
    photo.tags.append(tag)
    db.session.commit()
    assert photo.taken_at is not None
    return {"association_slug": photo.association.slug, "city": photo.association.partner_city,
            "tag_name": tag.name, "year": photo.taken_at.year}
