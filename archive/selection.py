"""Selecting for exhibitions, the curators' first step: ratings (1–5 stars per curator, the average and the count
are shown) and named shortlists ("Brunch 2026 – Kandidaten").

Ratings are opinions, not rights or publication: they are not written to the audit log. Shortlist changes are,
lightly (``shortlist.created``, ``.renamed``, ``.deleted``, ``.photos_added``, ``.photos_removed`` with the
photo ids). The functions commit. Bad input raises ``Refusal`` with the reason in German and English; nothing is
half-written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import case, delete, func, insert, null, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit
from .errors import Refusal
from .models import Photo, PhotoStatus, Rating, Shortlist, User, parse_id, shortlist_photos, utcnow
from .text import clean_text
from .workflow import forbidden, is_staff

S = PhotoStatus
RATEABLE = frozenset({S.PUBLISHED, S.IN_REVIEW})
# Any photo a curator sees may go on a shortlist, except files no image could be made from: there is nothing to
# look at or to show. (Only published photos are shown publicly in an exhibition: the pages say so.)
NOT_LISTABLE = frozenset({S.FAILED})
SHORTLIST_NAME_MAX = 200
MAX_SELECTED = 200  # more than a page ever shows: a guard against forged forms, not a limit people meet


def _require_staff(actor: User) -> None:
    if not is_staff(actor):
        raise forbidden()


# --------------------------------------------------------------------------------------------------------------------
# Ratings


@dataclass(frozen=True)
class RatingSummary:
    average: float | None  # None: nobody rated it yet
    count: int
    mine: int | None  # the asking curator's own stars


NO_RATINGS = RatingSummary(None, 0, None)


def parse_stars(raw: str | int | None) -> int | None:
    """The stars as a form sends them: "1"…"5", or "" / "0" / None to clear one's rating."""
    if raw is None or (isinstance(raw, str) and raw.strip() in ("", "0")) or raw == 0:
        return None
    try:
        stars = int(raw)
    except (TypeError, ValueError):
        stars = -1
    if not 1 <= stars <= 5:
        raise Refusal("stars_invalid", "Bitte wählen Sie 1 bis 5 Sterne (oder „keine Bewertung“).",
                      "Please choose 1 to 5 stars (or 'no rating').", status=422)
    return stars


def rate(session: Session, photo: Photo, curator: User, stars: int | None) -> RatingSummary:
    """Sets (or, with ``None``, clears) the curator's own stars for the photo; returns the new summary.

    Only photos in review or published are rated: the others are still being worked on by their association, or
    are out of the selection (returned, rejected, withdrawn). Clearing one's own rating is always possible."""
    _require_staff(curator)
    if stars is not None:
        if not 1 <= stars <= 5:
            raise Refusal("stars_invalid", "Bitte wählen Sie 1 bis 5 Sterne.", "Please choose 1 to 5 stars.",
                          status=422)
        if photo.status not in RATEABLE:
            raise Refusal("not_rateable",
                          "Bewertet werden nur Fotos, die in Prüfung oder veröffentlicht sind. Dieses Foto ist es "
                          "gerade nicht; nehmen Sie es zuerst in Prüfung.",
                          "Only photos in review or published can be rated. This photo is neither right now; "
                          "take it into review first.", status=409)
    existing = session.scalar(select(Rating).where(Rating.photo_id == photo.id, Rating.curator_id == curator.id))
    if stars is None:
        if existing is not None:
            session.delete(existing)
    elif existing is None:
        session.add(Rating(photo_id=photo.id, curator_id=curator.id, stars=stars, updated_at=utcnow()))
    else:
        existing.stars = stars
        existing.updated_at = utcnow()
    try:
        session.commit()
    except IntegrityError:  # the same curator in two tabs at once: the other request's row is there now
        session.rollback()
        return rate(session, photo, curator, stars)
    return rating_summaries(session, [photo.id], curator)[photo.id]


def rating_summaries(session: Session, photo_ids: Iterable[int], curator: User | None = None
                     ) -> dict[int, RatingSummary]:
    """Average, count and the curator's own stars for many photos, in one query. Every asked id is in the
    answer (``NO_RATINGS`` when nobody rated it)."""
    ids = sorted(set(photo_ids))
    if not ids:
        return {}
    mine = func.max(case((Rating.curator_id == curator.id, Rating.stars))) if curator is not None else null()
    rows = session.execute(select(Rating.photo_id, func.avg(Rating.stars), func.count(Rating.id), mine)
                           .where(Rating.photo_id.in_(ids)).group_by(Rating.photo_id))
    answer = dict.fromkeys(ids, NO_RATINGS)
    for photo_id, average, count, own in rows:
        answer[photo_id] = RatingSummary(float(average) if average is not None else None, int(count),
                                         int(own) if own is not None else None)
    return answer


# --------------------------------------------------------------------------------------------------------------------
# Shortlists


@dataclass(frozen=True)
class ShortlistRow:
    shortlist: Shortlist
    photos: int


def _name(raw: str | None) -> str:
    name = clean_text(raw)
    if not name:
        raise Refusal("shortlist_name_missing", "Bitte geben Sie der Auswahlliste einen Namen.",
                      "Please give the shortlist a name.", status=422)
    if len(name) > SHORTLIST_NAME_MAX:
        raise Refusal("shortlist_name_too_long",
                      f"Der Name ist zu lang ({len(name)} Zeichen). Bitte höchstens {SHORTLIST_NAME_MAX}.",
                      f"The name is too long ({len(name)} characters). Please use at most {SHORTLIST_NAME_MAX}.",
                      status=422)
    return name


def find_shortlist(session: Session, name: str) -> Shortlist | None:
    """The shortlist of this name, ignoring case ("Brunch 2026" is "brunch 2026"). Done in Python: SQLite's
    lower() knows only ASCII, and there are few lists."""
    wanted = clean_text(name).casefold()
    return next((s for s in session.scalars(select(Shortlist)) if s.name.casefold() == wanted), None)


def _taken(name: str) -> Refusal:
    return Refusal("shortlist_exists",
                   f"Eine Auswahlliste „{name}“ gibt es schon. Bitte wählen Sie einen anderen Namen "
                   "oder setzen Sie die Fotos auf die bestehende Liste.",
                   f"A shortlist '{name}' already exists. Please choose another name or add the photos to "
                   "the existing list.", status=409)


def create_shortlist(session: Session, curator: User, name: str) -> Shortlist:
    _require_staff(curator)
    name = _name(name)
    if (existing := find_shortlist(session, name)) is not None:
        raise _taken(existing.name)
    shortlist = Shortlist(name=name, created_by_id=curator.id)
    session.add(shortlist)
    try:
        session.flush()
    except IntegrityError as error:
        session.rollback()
        raise _taken(name) from error
    audit.record(session, "shortlist.created", actor=curator, subject="shortlist", subject_id=shortlist.id,
                 after={"name": name})
    session.commit()
    return shortlist


def rename_shortlist(session: Session, shortlist: Shortlist, curator: User, name: str) -> Shortlist:
    _require_staff(curator)
    name = _name(name)
    if name == shortlist.name:
        return shortlist
    existing = find_shortlist(session, name)
    if existing is not None and existing.id != shortlist.id:
        raise _taken(existing.name)
    before = shortlist.name
    shortlist.name = name
    try:
        session.flush()
    except IntegrityError as error:
        session.rollback()
        raise _taken(name) from error
    audit.record(session, "shortlist.renamed", actor=curator, subject="shortlist", subject_id=shortlist.id,
                 before={"name": before}, after={"name": name})
    session.commit()
    return shortlist


def delete_shortlist(session: Session, shortlist: Shortlist, curator: User) -> None:
    """The list goes; its photos stay in the archive."""
    _require_staff(curator)
    count = photo_count(session, shortlist)
    audit.record(session, "shortlist.deleted", actor=curator, subject="shortlist", subject_id=shortlist.id,
                 before={"name": shortlist.name, "photos": count})
    session.execute(delete(shortlist_photos).where(shortlist_photos.c.shortlist_id == shortlist.id))
    session.expire(shortlist, ["photos"])
    session.delete(shortlist)
    session.commit()


def list_shortlists(session: Session) -> list[ShortlistRow]:
    """Every shortlist with how many photos it holds, newest first (one query)."""
    count = func.count(shortlist_photos.c.photo_id)
    rows = session.execute(select(Shortlist, count)
                           .outerjoin(shortlist_photos, shortlist_photos.c.shortlist_id == Shortlist.id)
                           .group_by(Shortlist.id).order_by(Shortlist.created_at.desc(), Shortlist.id.desc()))
    return [ShortlistRow(shortlist, int(n)) for shortlist, n in rows]


def photo_count(session: Session, shortlist: Shortlist) -> int:
    return session.scalar(select(func.count()).select_from(shortlist_photos)
                          .where(shortlist_photos.c.shortlist_id == shortlist.id)) or 0


def shortlist_photo_ids(session: Session, shortlist: Shortlist) -> list[int]:
    """The photos on the list, in the order they were added."""
    return list(session.scalars(select(shortlist_photos.c.photo_id)
                                .where(shortlist_photos.c.shortlist_id == shortlist.id)
                                .order_by(shortlist_photos.c.added_at, shortlist_photos.c.photo_id)))


def shortlists_of(session: Session, photo_id: int) -> list[Shortlist]:
    """The lists a photo is on (the photo page shows them)."""
    return list(session.scalars(select(Shortlist).join(shortlist_photos, shortlist_photos.c.shortlist_id ==
                                                       Shortlist.id)
                                .where(shortlist_photos.c.photo_id == photo_id).order_by(Shortlist.name)))


def selected_ids(raw_ids: Sequence[str | int]) -> list[int]:
    """The photo ids a bulk form sent, once each, in order; refuses none, too many and garbage."""
    parsed = [parse_id(raw) for raw in raw_ids]
    if None in parsed:
        raise Refusal("selection_invalid", "Die Auswahl ist fehlerhaft. Bitte laden Sie die Seite neu.",
                      "The selection is malformed. Please reload the page.", status=400)
    ids = list(dict.fromkeys(i for i in parsed if i is not None))
    if not ids:
        raise Refusal("nothing_selected", "Bitte wählen Sie mindestens ein Foto aus (Kästchen beim Foto).",
                      "Please select at least one photo (the box beside it).", status=422)
    if len(ids) > MAX_SELECTED:
        raise Refusal("too_many_selected", f"Bitte wählen Sie höchstens {MAX_SELECTED} Fotos auf einmal.",
                      f"Please select at most {MAX_SELECTED} photos at once.", status=422)
    return ids


@dataclass
class Added:
    """What adding did: photos added now, already on the list, not listable (with their status), gone."""

    shortlist: Shortlist
    created: bool = False
    added: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def add_photos(session: Session, shortlist: Shortlist, curator: User, photo_ids: Iterable[int], *,
               created: bool = False) -> Added:
    """Puts photos on the list (bulk). Photos already there stay where they are; failed files and ids that no
    longer exist are left out and reported."""
    _require_staff(curator)
    ids = list(dict.fromkeys(photo_ids))
    outcome = Added(shortlist, created=created)
    statuses = {photo_id: status for photo_id, status in session.execute(
        select(Photo.id, Photo.status).where(Photo.id.in_(ids)))} if ids else {}
    present = set(session.scalars(select(shortlist_photos.c.photo_id).where(
        shortlist_photos.c.shortlist_id == shortlist.id, shortlist_photos.c.photo_id.in_(ids)))) if ids else set()
    for photo_id in ids:
        if photo_id not in statuses:
            outcome.missing.append(photo_id)
        elif photo_id in present:
            outcome.already.append(photo_id)
        elif statuses[photo_id] in NOT_LISTABLE:
            outcome.refused.append(photo_id)
        else:
            outcome.added.append(photo_id)
    if outcome.added:
        now = utcnow()  # a microsecond apart: the list keeps the order they were picked in
        session.execute(insert(shortlist_photos), [{"shortlist_id": shortlist.id, "photo_id": photo_id,
                                                     "added_at": now + timedelta(microseconds=n)}
                                                    for n, photo_id in enumerate(outcome.added)])
        audit.record(session, "shortlist.photos_added", actor=curator, subject="shortlist",
                     subject_id=shortlist.id, photo_ids=outcome.added)
    try:
        session.commit()
    except IntegrityError:  # a double click: the other request added them a moment ago; now they are "already"
        session.rollback()
        return add_photos(session, shortlist, curator, ids, created=created)
    return outcome


def add_to_new_or_existing(session: Session, curator: User, photo_ids: Iterable[int], *,
                           shortlist: Shortlist | None = None, new_name: str = "") -> Added:
    """The bulk form's add: a typed name wins over the chosen list. A typed name that is already a list's name
    (ignoring case) adds to that list rather than refusing: the photos end up where the curator meant."""
    ids = list(photo_ids)
    if clean_text(new_name):
        existing = find_shortlist(session, new_name)
        if existing is not None:
            return add_photos(session, existing, curator, ids)
        return add_photos(session, create_shortlist(session, curator, new_name), curator, ids, created=True)
    if shortlist is None:
        raise Refusal("shortlist_missing", "Bitte wählen Sie eine Auswahlliste oder geben Sie einen neuen Namen ein.",
                      "Please choose a shortlist or type a new name.", status=422)
    return add_photos(session, shortlist, curator, ids)


def remove_photos(session: Session, shortlist: Shortlist, curator: User, photo_ids: Iterable[int]) -> list[int]:
    """Takes photos off the list (bulk); returns the ids that were on it. The photos stay in the archive."""
    _require_staff(curator)
    ids = list(dict.fromkeys(photo_ids))
    if not ids:
        return []
    on_list = set(session.scalars(select(shortlist_photos.c.photo_id).where(
        shortlist_photos.c.shortlist_id == shortlist.id, shortlist_photos.c.photo_id.in_(ids))))
    removed = [photo_id for photo_id in ids if photo_id in on_list]
    if removed:
        session.execute(delete(shortlist_photos).where(shortlist_photos.c.shortlist_id == shortlist.id,
                                                       shortlist_photos.c.photo_id.in_(removed)))
        audit.record(session, "shortlist.photos_removed", actor=curator, subject="shortlist",
                     subject_id=shortlist.id, photo_ids=removed)
    session.commit()
    return removed
