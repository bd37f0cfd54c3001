"""Access rules for the selection routes (ratings, shortlists): curators and admins only; members get a 403,
visitors the login page. A rating is refused (409) for photos that are neither in review nor published."""

from __future__ import annotations

from typing import Any

from archive import selection
from archive.models import PhotoStatus, User, db
from tests.access_rules import ADMIN, ANON, CURATOR, LOGIN, OK, Rule, staff_may, staff_page


def rate_photo(role: str, state: PhotoStatus | None) -> int | str:
    """Curators rate photos in review or published; the others are refused with 409 (and nothing changes)."""
    if role == ANON:
        return LOGIN
    if role not in (CURATOR, ADMIN):
        return 403
    return OK if state in (PhotoStatus.IN_REVIEW, PhotoStatus.PUBLISHED) else 409


POLICY: dict[tuple[str, str], Rule] = {
    ("selection.shortlists", "GET"): staff_page,
    ("selection.shortlists", "POST"): staff_may,
    ("selection.shortlist", "GET"): staff_page,
    ("selection.rename", "POST"): staff_may,
    ("selection.delete", "POST"): staff_may,
    ("selection.remove", "POST"): staff_may,
    ("selection.add", "POST"): staff_may,
    ("selection.rate", "POST"): rate_photo,
}

BODIES: dict[str, dict[str, str]] = {
    "selection.shortlists": {"name": "Brunch 2026"},
    "selection.rename": {"name": "Rathaus 2026"},
    "selection.delete": {"confirm": "1"},
    "selection.remove": {"photo_ids": "1"},
    "selection.add": {"photo_ids": "1", "new_shortlist": "Neue Liste"},
    "selection.rate": {"stars": "4"},
}


def values(users: dict[str, int], photos: dict[PhotoStatus, int]) -> dict[str, Any]:
    """A shortlist holding every photo that may be on one (all but the failed file)."""
    curator = db.session.get(User, users[CURATOR])
    shortlist = selection.create_shortlist(db.session, curator, "Kandidaten")
    selection.add_photos(db.session, shortlist, curator, [photo_id for state, photo_id in photos.items()
                                                          if state != PhotoStatus.FAILED])
    return {"shortlist_id": shortlist.id}
