"""The curators' vocabulary as services: places and controlled tags, their refusals, the audit entries they leave
and the search updates they cause."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from archive import vocabulary, workflow
from archive.errors import Refusal
from archive.models import Association, AuditEvent, OutboxEvent, Photo, PhotoStatus, Place, Tag, User, db


def add_photo(title: str, **fields: Any) -> Photo:
    association = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    photo = Photo(association_id=association, status=PhotoStatus.SUBMITTED, title=title,
                  sha256=hashlib.sha256(title.encode()).hexdigest(), original_key=f"originals/{title}",
                  format="jpeg", mime_type="image/jpeg", size_bytes=1, width=1, height=1, **fields)
    db.session.add(photo)
    db.session.commit()
    return photo


def events(prefix: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                   .order_by(AuditEvent.id)))


def outbox_photos() -> list[int | None]:
    return list(db.session.scalars(select(OutboxEvent.photo_id).order_by(OutboxEvent.id)))


def refused(code: str, status: int, call: Any, *args: Any, **kwargs: Any) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call(*args, **kwargs)
    db.session.rollback()
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.de and caught.value.en and caught.value.de != caught.value.en
    return caught.value


@pytest.mark.parametrize(("typed", "kind", "value"), [
    ("49,4836", "lat", 49.4836), (" 8.4516 ", "lon", 8.4516), ("", "lat", None), ("-90", "lat", -90.0),
    ("180", "lon", 180.0), (None, "lon", None), (12.5, "lat", 12.5),
])
def test_coordinates_as_typed(typed: Any, kind: str, value: float | None) -> None:
    assert vocabulary.parse_coordinate(typed, kind) == value


@pytest.mark.parametrize(("typed", "kind"), [("90.1", "lat"), ("-181", "lon"), ("nan", "lat"), ("inf", "lon"),
                                             ("Nord", "lat"), ("49,48,1", "lat")])
def test_impossible_coordinates_are_refused(typed: str, kind: str) -> None:
    with pytest.raises(Refusal) as caught:
        vocabulary.parse_coordinate(typed, kind)
    assert caught.value.status == 422
    assert ("Breitengrad" if kind == "lat" else "Längengrad") in caught.value.de
    assert ("latitude" if kind == "lat" else "longitude") in caught.value.en


def test_a_place_is_created_cleanly_and_audited(app: Flask, people: dict[str, User]) -> None:
    decomposed = "Konrad-Adenauer-Bru\u0308cke"  # "ü" typed as u + combining diaeresis
    place = vocabulary.create_place(db.session, people["curator"], name=f"  {decomposed}  ",
                                    city="Ludwigshafen   am Rhein", lat="49,4836", lon="8,4516")
    assert (place.name, place.city, place.lat, place.lon) == ("Konrad-Adenauer-Brücke", "Ludwigshafen am Rhein",
                                                              49.4836, 8.4516)
    [event] = events("place.")
    assert (event.action, event.subject, event.subject_id, event.actor_id, event.photo_id) == (
        "place.created", "place", place.id, people["curator"].id, None)
    assert event.detail["after"] == {"name": "Konrad-Adenauer-Brücke", "city": "Ludwigshafen am Rhein",
                                     "lat": 49.4836, "lon": 8.4516}


def test_places_refuse_duplicates_half_coordinates_empty_names_and_members(app: Flask,
                                                                          people: dict[str, User]) -> None:
    curator = people["curator"]
    vocabulary.create_place(db.session, curator, name="Rheinbrücke", city="Mannheim")
    duplicate = refused("place_exists", 409, vocabulary.create_place, db.session, curator, name="RHEINBRÜCKE",
                        city="mannheim")
    assert "steht schon in der Liste" in duplicate.de and "already in the list" in duplicate.en
    refused("place_coordinates", 422, vocabulary.create_place, db.session, curator, name="Pont", city="Lorient",
            lat="47.75")
    refused("place_name", 422, vocabulary.create_place, db.session, curator, name=" ", city="Lorient")
    refused("place_city", 422, vocabulary.create_place, db.session, curator, name="Pont", city="")
    refused("place_too_long", 422, vocabulary.create_place, db.session, curator, name="x" * 201, city="Lorient")
    refused("not_allowed", 403, vocabulary.create_place, db.session, people["member"], name="Pont", city="Lorient")
    # The same name in another city is another place.
    vocabulary.create_place(db.session, curator, name="Rheinbrücke", city="Ludwigshafen am Rhein")
    assert len(db.session.scalars(select(Place)).all()) == 2
    assert [e.action for e in events("place.")] == ["place.created", "place.created"]


def test_changing_a_place_audits_only_what_changed_and_reindexes_its_photos(app: Flask,
                                                                            people: dict[str, User]) -> None:
    curator = people["curator"]
    place = vocabulary.create_place(db.session, curator, name="Rheinbrücke", city="Mannheim")
    other = vocabulary.create_place(db.session, curator, name="Kurt-Schumacher-Brücke", city="Mannheim")
    shown = add_photo("Am Fluss", place_id=place.id)
    add_photo("Anderswo", place_id=other.id)
    before = len(outbox_photos())

    vocabulary.change_place(db.session, place, curator, name="Rheinbrücke", city="Mannheim")  # nothing new
    assert len(events("place.changed")) == 0
    refused("place_exists", 409, vocabulary.change_place, db.session, place, curator,
            name="kurt-schumacher-brücke", city="Mannheim")

    vocabulary.change_place(db.session, place, curator, name="Konrad-Adenauer-Brücke",
                            city="Ludwigshafen am Rhein", lat="49.4836", lon="8.4516")
    [event] = events("place.changed")
    assert event.detail["before"] == {"name": "Rheinbrücke", "city": "Mannheim", "lat": None, "lon": None}
    assert event.detail["after"]["city"] == "Ludwigshafen am Rhein" and event.detail["after"]["lat"] == 49.4836
    assert outbox_photos()[before:] == [shown.id]
    rows = {row.place.name: row.photos for row in vocabulary.list_places(db.session)}
    assert rows == {"Konrad-Adenauer-Brücke": 1, "Kurt-Schumacher-Brücke": 1}


def test_controlled_tags_are_created_once_and_a_free_keyword_is_promoted_instead(app: Flask,
                                                                               people: dict[str, User]) -> None:
    curator = people["curator"]
    photo = add_photo("Abends")
    workflow.update_photo(db.session, photo, workflow.RightsChange(keywords=["Abendrot"]), people["member"])
    free = db.session.scalar(select(Tag).where(Tag.name == "Abendrot"))
    assert not free.controlled

    tag = vocabulary.create_tag(db.session, curator, "  Brücke ")
    assert (tag.name, tag.controlled) == ("Brücke", True)
    refused("tag_exists", 409, vocabulary.create_tag, db.session, curator, "brücke")
    refused("tag_name", 422, vocabulary.create_tag, db.session, curator, "   ")
    refused("tag_too_long", 422, vocabulary.create_tag, db.session, curator, "x" * 101)
    refused("not_allowed", 403, vocabulary.create_tag, db.session, people["member"], "Fluss")

    promoted = vocabulary.create_tag(db.session, curator, "abendrot")
    assert promoted.id == free.id and promoted.controlled and promoted.name == "Abendrot"
    refused("tag_already_controlled", 409, vocabulary.promote_keyword, db.session, promoted, curator)
    assert [e.action for e in events("tag.")] == ["tag.created", "tag.controlled"]
    assert events("tag.controlled")[0].detail == {"name": "Abendrot", "before": {"controlled": False},
                                                  "after": {"controlled": True}}
    assert [(row.tag.name, row.photos) for row in vocabulary.list_tags(db.session)] == [("Abendrot", 1),
                                                                                       ("Brücke", 0)]
    assert vocabulary.list_tags(db.session, controlled=False) == []


def test_renaming_a_tag_refuses_clashes_and_reindexes_its_photos(app: Flask, people: dict[str, User]) -> None:
    curator = people["curator"]
    tag = vocabulary.create_tag(db.session, curator, "Bruecke")
    photo = add_photo("Brücke am Abend")
    workflow.update_photo(db.session, photo, workflow.RightsChange(tag_ids=[tag.id], keywords=["Fluss"]), curator)
    fluss = db.session.scalar(select(Tag).where(Tag.name == "Fluss"))
    before = len(outbox_photos())

    clash = refused("tag_exists", 409, vocabulary.rename_tag, db.session, tag, curator, "FLUSS")
    assert "freies Schlagwort" in clash.de
    refused("tag_not_controlled", 409, vocabulary.rename_tag, db.session, fluss, curator, "Strom")
    vocabulary.rename_tag(db.session, tag, curator, "Brücke")
    vocabulary.rename_tag(db.session, tag, curator, "brücke")  # only the case: still the same tag
    assert db.session.get(Tag, tag.id).name == "brücke"
    assert [e.detail for e in events("tag.renamed")] == [{"before": {"name": "Bruecke"}, "after": {"name": "Brücke"}},
                                                        {"before": {"name": "Brücke"}, "after": {"name": "brücke"}}]
    assert outbox_photos()[before:] == [photo.id, photo.id]


def test_tagging_photos_one_by_one(app: Flask, people: dict[str, User]) -> None:
    curator = people["curator"]
    tag = vocabulary.create_tag(db.session, curator, "Brücke")
    first, second = add_photo("Eins"), add_photo("Zwei")
    workflow.update_photo(db.session, second, workflow.RightsChange(tag_ids=[tag.id]), curator)

    outcome = vocabulary.tag_photos(db.session, [first, second], tag, curator)
    assert (outcome.done, outcome.already, outcome.refused) == ([first.id], [second.id], [])
    assert [t.name for t in db.session.get(Photo, first.id).tags] == ["Brücke"]
    assert events("photo.edited")[-1].detail["after"] == {"tags": ["Brücke"]}

    free = Tag(name="Abend", controlled=False)
    db.session.add(free)
    db.session.commit()
    refused("tag_not_controlled", 422, vocabulary.tag_photos, db.session, [first], free, curator)
    refused("not_allowed", 403, vocabulary.tag_photos, db.session, [first], tag, people["member"])
