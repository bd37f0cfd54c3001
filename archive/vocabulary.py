"""The curators' vocabulary: the list of places and bridges, and the controlled tags.

Every change is written to the audit log in the same transaction (subject "place" or "tag", before and after);
a change that alters what photos show (a renamed tag, a moved place) also writes an outbox event per affected
photo, so search follows. The functions commit. Bad input raises ``Refusal`` with the reason in German and
English; nothing is half-written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit
from .errors import Refusal
from .models import OutboxEvent, Photo, Place, Tag, User, photo_tags
from .text import clean_text
from .workflow import RightsChange, forbidden, is_staff, update_photo

PLACE_NAME_MAX = 200
PLACE_CITY_MAX = 120
TAG_NAME_MAX = 100


def _require_staff(actor: User) -> None:
    if not is_staff(actor):
        raise forbidden()


def _changed_photos(session: Session, photo_ids: Iterable[int]) -> None:
    for photo_id in sorted(set(photo_ids)):
        session.add(OutboxEvent(topic="photo.changed", photo_id=photo_id))


# --------------------------------------------------------------------------------------------------------------------
# Places


@dataclass(frozen=True)
class PlaceRow:
    place: Place
    photos: int


def parse_coordinate(raw: str | float | None, kind: str) -> float | None:
    """A latitude ("lat", -90…90) or longitude ("lon", -180…180) as typed: empty means none; a decimal comma
    is fine ("49,4811")."""
    if raw is None:
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = raw.strip().replace(",", ".")
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
    limit = 90.0 if kind == "lat" else 180.0
    de, en = ("Breitengrad", "latitude") if kind == "lat" else ("Längengrad", "longitude")
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise Refusal(f"place_{kind}",
                      f"Der {de} muss eine Zahl zwischen -{limit:g} und {limit:g} sein (zum Beispiel 49,4811). "
                      "Lassen Sie das Feld leer, wenn Sie ihn nicht kennen.",
                      f"The {en} must be a number between -{limit:g} and {limit:g} (for example 49.4811). "
                      "Leave it empty if you do not know it.", status=422)
    return round(value, 7)


def _place_fields(name: str, city: str, lat: str | float | None, lon: str | float | None) -> dict[str, Any]:
    name, city = clean_text(name), clean_text(city)
    if not name:
        raise Refusal("place_name", "Bitte geben Sie den Namen des Ortes oder der Brücke an.",
                      "Please give the name of the place or bridge.", status=422)
    if not city:
        raise Refusal("place_city", "Bitte geben Sie die Stadt an (zum Beispiel Ludwigshafen am Rhein).",
                      "Please give the city (for example Ludwigshafen am Rhein).", status=422)
    if len(name) > PLACE_NAME_MAX or len(city) > PLACE_CITY_MAX:
        raise Refusal("place_too_long",
                      f"Der Name darf höchstens {PLACE_NAME_MAX}, die Stadt höchstens {PLACE_CITY_MAX} Zeichen "
                      "lang sein.",
                      f"The name may be at most {PLACE_NAME_MAX}, the city at most {PLACE_CITY_MAX} characters long.",
                      status=422)
    lat_value, lon_value = parse_coordinate(lat, "lat"), parse_coordinate(lon, "lon")
    if (lat_value is None) != (lon_value is None):
        raise Refusal("place_coordinates",
                      "Bitte geben Sie Breiten- und Längengrad zusammen an, oder keinen von beiden.",
                      "Please give both latitude and longitude, or neither.", status=422)
    return {"name": name, "city": city, "lat": lat_value, "lon": lon_value}


def _duplicate_place(name: str, city: str) -> Refusal:
    return Refusal("place_exists",
                   f"„{name}“ in {city} steht schon in der Liste. Bitte wählen Sie den vorhandenen Ort oder "
                   "einen anderen Namen.",
                   f"'{name}' in {city} is already in the list. Please use the existing place or another name.",
                   status=409)


def _check_place_unique(session: Session, name: str, city: str, own_id: int | None = None) -> None:
    """Unique by name and city, ignoring case: "Rheinbrücke" and "rheinbrücke" in one city are one place. (Compared
    in Python: SQLite's lower() folds ASCII letters only. The list is short.)"""
    key = (name.casefold(), city.casefold())
    for place in session.scalars(select(Place).where(Place.id != (own_id or 0))):
        if (place.name.casefold(), place.city.casefold()) == key:
            raise _duplicate_place(place.name, place.city)


def list_places(session: Session) -> list[PlaceRow]:
    """Every place, by city then name, with how many photos show it."""
    counts: dict[int, int] = {place_id: count for place_id, count in session.execute(
        select(Photo.place_id, func.count()).where(Photo.place_id.is_not(None)).group_by(Photo.place_id))}
    places = session.scalars(select(Place).order_by(Place.city, Place.name)).all()
    return [PlaceRow(place, counts.get(place.id, 0)) for place in places]


def _place_state(place: Place) -> dict[str, Any]:
    return {"name": place.name, "city": place.city, "lat": place.lat, "lon": place.lon}


def _flush_or_duplicate(session: Session, name: str, city: str) -> None:
    try:
        session.flush()
    except IntegrityError as error:  # someone else added the same place a moment ago
        session.rollback()
        raise _duplicate_place(name, city) from error


def create_place(session: Session, actor: User, *, name: str, city: str, lat: str | float | None = None,
                 lon: str | float | None = None) -> Place:
    _require_staff(actor)
    fields = _place_fields(name, city, lat, lon)
    _check_place_unique(session, fields["name"], fields["city"])
    place = Place(**fields)
    session.add(place)
    _flush_or_duplicate(session, fields["name"], fields["city"])
    audit.record(session, "place.created", actor=actor, subject="place", subject_id=place.id, after=fields)
    session.commit()
    return place


def change_place(session: Session, place: Place, actor: User, *, name: str, city: str,
                 lat: str | float | None = None, lon: str | float | None = None) -> Place:
    """Changes a place; photos showing it are re-indexed (their place reads differently now)."""
    _require_staff(actor)
    fields = _place_fields(name, city, lat, lon)
    _check_place_unique(session, fields["name"], fields["city"], own_id=place.id)
    old, new = audit.changes(_place_state(place), fields)
    if not new:
        return place
    for field, value in new.items():
        setattr(place, field, value)
    _flush_or_duplicate(session, fields["name"], fields["city"])
    audit.record(session, "place.changed", actor=actor, subject="place", subject_id=place.id, before=old, after=new)
    _changed_photos(session, session.scalars(select(Photo.id).where(Photo.place_id == place.id)))
    session.commit()
    return place


# --------------------------------------------------------------------------------------------------------------------
# Tags


@dataclass(frozen=True)
class TagRow:
    tag: Tag
    photos: int


def _tag_name(name: str) -> str:
    name = clean_text(name)
    if not name:
        raise Refusal("tag_name", "Bitte geben Sie ein Schlagwort ein.", "Please enter a tag.", status=422)
    if len(name) > TAG_NAME_MAX:
        raise Refusal("tag_too_long", f"Ein Schlagwort darf höchstens {TAG_NAME_MAX} Zeichen lang sein.",
                      f"A tag may be at most {TAG_NAME_MAX} characters long.", status=422)
    return name


def _tag_taken(name: str) -> Refusal:
    return Refusal("tag_exists", f"Das Schlagwort „{name}“ gibt es schon.", f"The tag '{name}' already exists.",
                   status=409)


def find_tag(session: Session, name: str) -> Tag | None:
    """The tag spelled like ``name``, ignoring case ("Brücke" and "brücke" are one word)."""
    exact = session.scalar(select(Tag).where(Tag.name == name))
    if exact is not None:
        return exact
    folded = name.casefold()
    return next((tag for tag in session.scalars(select(Tag)) if tag.name.casefold() == folded), None)


def _counts(session: Session) -> dict[int, int]:
    return {tag_id: count for tag_id, count in
            session.execute(select(photo_tags.c.tag_id, func.count()).group_by(photo_tags.c.tag_id))}


def list_tags(session: Session, *, controlled: bool = True, limit: int | None = None) -> list[TagRow]:
    """Controlled tags by name, or free keywords most used first, each with how many photos carry it."""
    counts = _counts(session)
    tags = session.scalars(select(Tag).where(Tag.controlled.is_(controlled)).order_by(Tag.name)).all()
    rows = [TagRow(tag, counts.get(tag.id, 0)) for tag in tags]
    if not controlled:
        rows.sort(key=lambda row: (-row.photos, row.tag.name.casefold()))
    return rows[:limit] if limit is not None else rows


def count_keywords(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Tag).where(Tag.controlled.is_(False))) or 0


def create_tag(session: Session, actor: User, name: str) -> Tag:
    """A new controlled tag. A free keyword of the same spelling becomes controlled instead (the photos that
    carry it keep it)."""
    _require_staff(actor)
    name = _tag_name(name)
    existing = find_tag(session, name)
    if existing is not None:
        if existing.controlled:
            raise Refusal("tag_exists", f"Das Schlagwort „{existing.name}“ steht schon in der Liste.",
                          f"The tag '{existing.name}' is already in the list.", status=409)
        return promote_keyword(session, existing, actor)
    tag = Tag(name=name, controlled=True)
    session.add(tag)
    try:
        session.flush()
    except IntegrityError as error:
        session.rollback()
        raise _tag_taken(name) from error
    audit.record(session, "tag.created", actor=actor, subject="tag", subject_id=tag.id,
                 after={"name": name, "controlled": True})
    session.commit()
    return tag


def rename_tag(session: Session, tag: Tag, actor: User, name: str) -> Tag:
    """Renames a controlled tag everywhere it is used; its photos are re-indexed."""
    _require_staff(actor)
    if not tag.controlled:
        raise Refusal("tag_not_controlled",
                      "Freie Schlagwörter werden hier nicht umbenannt. Übernehmen Sie es zuerst in die Liste.",
                      "Free keywords are not renamed here. Add it to the list first.", status=409)
    name = _tag_name(name)
    if name == tag.name:
        return tag
    other = find_tag(session, name)
    if other is not None and other.id != tag.id:
        kind_de, kind_en = ("in der Liste", "in the list") if other.controlled else ("als freies Schlagwort",
                                                                                   "as a free keyword")
        raise Refusal("tag_exists", f"„{other.name}“ gibt es schon {kind_de}. Bitte wählen Sie einen anderen Namen.",
                      f"'{other.name}' already exists {kind_en}. Please choose another name.", status=409)
    before = tag.name
    tag.name = name
    try:
        session.flush()
    except IntegrityError as error:
        session.rollback()
        raise _tag_taken(name) from error
    audit.record(session, "tag.renamed", actor=actor, subject="tag", subject_id=tag.id, before={"name": before},
                 after={"name": name})
    _changed_photos(session, session.scalars(select(photo_tags.c.photo_id).where(photo_tags.c.tag_id == tag.id)))
    session.commit()
    return tag


def promote_keyword(session: Session, tag: Tag, actor: User) -> Tag:
    """A free keyword (typed by members, or read from files) joins the curators' list."""
    _require_staff(actor)
    if tag.controlled:
        raise Refusal("tag_already_controlled", f"„{tag.name}“ steht schon in der Liste.",
                      f"'{tag.name}' is already in the list.", status=409)
    tag.controlled = True
    audit.record(session, "tag.controlled", actor=actor, subject="tag", subject_id=tag.id,
                 before={"controlled": False}, after={"controlled": True}, name=tag.name)
    session.commit()
    return tag


@dataclass
class TagOutcome:
    done: list[int]
    already: list[int]
    refused: list[tuple[int, Refusal]]


def tag_photos(session: Session, photos: Iterable[Photo], tag: Tag, actor: User) -> TagOutcome:
    """Adds a controlled tag to each photo, each on its own (through ``workflow.update_photo``, so it is audited
    and re-indexed): one that is refused does not hold back the others."""
    _require_staff(actor)
    if not tag.controlled:
        raise Refusal("tag_not_controlled", "Bitte wählen Sie ein Schlagwort aus der Liste der Kurator:innen.",
                      "Please choose a tag from the curators' list.", status=422)
    outcome = TagOutcome(done=[], already=[], refused=[])
    tag_id = tag.id
    for photo in photos:
        photo_id = photo.id
        current = [t.id for t in photo.tags if t.controlled]
        if tag_id in current:
            outcome.already.append(photo_id)
            continue
        try:
            update_photo(session, photo, RightsChange(tag_ids=[*current, tag_id]), actor)
        except Refusal as refusal:
            session.rollback()
            outcome.refused.append((photo_id, refusal))
        else:
            outcome.done.append(photo_id)
    return outcome
