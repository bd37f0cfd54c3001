"""Access rules for the jury routes.

The matrix's round: made by the admin ("ada"), with the curator ("cora") as its only juror, and the published and
in-review photos as its pool. So the curator may judge and vote (the admin may not: not a juror), while the admin,
as organiser, sees the results and the CSV and may close it (the curator may not: a juror of an open round sees only
their own votes).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from archive import jury
from archive.models import PhotoStatus, User, db, utcnow
from tests.access_rules import ADMIN, ANON, CURATOR, LOGIN, OK, Rule, staff_may, staff_page


def juror_page(role: str, state: PhotoStatus | None) -> int | str:
    """The judge page: only the round's jurors (the curator); other staff 403, members 403."""
    return LOGIN if role == ANON else (200 if role == CURATOR else 403)


def juror_may(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else (OK if role == CURATOR else 403)


def organiser_page(role: str, state: PhotoStatus | None) -> int | str:
    """Results (CSV): staff who are not jurors of the open round, here the admin."""
    return LOGIN if role == ANON else (200 if role == ADMIN else 403)


def organiser_may(role: str, state: PhotoStatus | None) -> int | str:
    return LOGIN if role == ANON else (OK if role == ADMIN else 403)


POLICY: dict[tuple[str, str], Rule] = {
    ("jury.rounds", "GET"): staff_page,
    ("jury.new_round", "GET"): staff_page,
    ("jury.new_round", "POST"): staff_may,
    ("jury.round_page", "GET"): staff_page,  # jurors of an open round see it without scores and votes
    ("jury.close", "POST"): organiser_may,
    ("jury.results_csv", "GET"): organiser_page,
    ("jury.judge", "GET"): juror_page,
    ("jury.vote", "POST"): juror_may,
}

# Filled in by values(): the photo and people ids exist only once the matrix's archive is made (the matrix keeps
# these very dicts, so what values() adds is what the POSTs send).
BODIES: dict[str, dict[str, str]] = {
    "jury.new_round": {"name": "Matrix-Runde 2", "mode": "stars", "pool": "photos", "deadline": "2099-01-01T12:00"},
    "jury.vote": {"value": "1"},
    "jury.close": {"rule": "count", "value": "1"},
}


def values(users: dict[str, int], photos: dict[PhotoStatus, int]) -> dict[str, Any]:
    admin = db.session.get(User, users[ADMIN])
    made = jury.create_round(
        db.session, admin, name="Matrix-Runde", mode="yes_no", blind=True, deadline=utcnow() + timedelta(days=30),
        juror_ids=[users[CURATOR]],
        pool=jury.pool_from_photos([photos[PhotoStatus.PUBLISHED], photos[PhotoStatus.IN_REVIEW]]))
    BODIES["jury.vote"]["photo_id"] = str(photos[PhotoStatus.PUBLISHED])
    BODIES["jury.new_round"]["photo_ids"] = str(photos[PhotoStatus.PUBLISHED])
    BODIES["jury.new_round"]["juror_ids"] = str(users[CURATOR])
    return {"round_id": made.id}
