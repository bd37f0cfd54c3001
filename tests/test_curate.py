"""The curators' pages: the review queue and its bulk actions, places and tags, and the audit log."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from archive import audit, workflow
from archive.models import (
    Association,
    AuditEvent,
    Licence,
    PeopleShown,
    Photo,
    PhotoStatus,
    Place,
    Tag,
    User,
    db,
    utcnow,
)
from tests.conftest import jpeg_bytes, login

S = PhotoStatus


def association_id(slug: str) -> int:
    return db.session.scalar(select(Association.id).where(Association.slug == slug))


def add_photo(title: str, *, slug: str = "pasadena", status: PhotoStatus = S.SUBMITTED,
              age_days: float = 0) -> int:
    """A photo row as processing leaves it (no images: the queue shows a placeholder)."""
    photo = Photo(association_id=association_id(slug), status=status, title=title,
                  sha256=hashlib.sha256(f"{title}{slug}{status}".encode()).hexdigest(),
                  original_key=f"originals/{title}", format="jpeg", mime_type="image/jpeg", size_bytes=1,
                  width=1, height=1, created_at=utcnow() - timedelta(days=age_days))
    db.session.add(photo)
    db.session.commit()
    return photo.id


def a_place() -> Place:
    place = db.session.scalar(select(Place).where(Place.name == "Konrad-Adenauer-Brücke"))
    if place is None:
        place = Place(name="Konrad-Adenauer-Brücke", city="Ludwigshafen am Rhein", lat=49.4836, lon=8.4516)
        db.session.add(place)
        db.session.commit()
    return place


def complete(photo_id: int, actor: User) -> None:
    """Everything the publication gate asks for, with nobody identifiable."""
    photo = db.session.get(Photo, photo_id)
    workflow.update_photo(db.session, photo, workflow.RightsChange(
        caption="Abendlicht über dem Rhein", alt_text="Eine Stahlbrücke über einem breiten Fluss",
        credit="Anna Beispiel", licence=Licence.CC_BY, people=PeopleShown.NONE, minors=False,
        place_id=a_place().id, taken_at=datetime(2024, 6, 1, 19, 30)), actor)


def status_of(photo_id: int) -> PhotoStatus:
    db.session.expire_all()
    return db.session.get(Photo, photo_id).status


def audit_actions(photo_id: int | None = None, prefix: str = "") -> list[str]:
    db.session.expire_all()
    query = select(AuditEvent.action).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)
    if photo_id is not None:
        query = query.where(AuditEvent.photo_id == photo_id)
    return list(db.session.scalars(query))


def queue_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="photo_ids" value="(\d+)" id="pick-', html)]


def bulk(client: FlaskClient, action: str, ids: list[int], confirm: bool = False, **form: Any) -> Any:
    data: dict[str, Any] = {"action": action, "photo_ids": [str(i) for i in ids], **form}
    if confirm:
        data["confirm"] = "1"
    return client.post("/curate/bulk", data=data)


def controlled_tag(name: str) -> Tag:
    tag = Tag(name=name, controlled=True)
    db.session.add(tag)
    db.session.commit()
    return tag


# --------------------------------------------------------------------------------------------------------------------
# Who may come in


def every_curate_url(app: Flask) -> list[tuple[str, str]]:
    """Each curate route with made-up ids, and its methods."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("curate."):
            continue
        url = re.sub(r"<(?:int:)?\w+>", "1", rule.rule)
        urls += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return urls


def test_every_curate_page_is_for_curators_and_admins_only(app: Flask, client: FlaskClient,
                                                           people: dict[str, User]) -> None:
    urls = every_curate_url(app)
    assert ("GET", "/curate") in urls and ("POST", "/curate/bulk") in urls
    assert ("GET", "/curate/photos/1/audit") in urls and ("GET", "/curate/audit") in urls
    for method, url in urls:
        response = client.open(url, method=method)
        assert response.status_code == 302 and "/login" in response.headers["Location"], (method, url)
    login(client, "mia")
    for method, url in urls:
        assert client.open(url, method=method).status_code == 403, (method, url)
    for name in ("cora", "ada"):
        login(client, name)
        assert client.get("/curate").status_code == 200
        assert client.get("/curate/audit").status_code == 200


def test_the_audit_page_of_a_missing_photo_is_404(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "cora")
    assert client.get("/curate/photos/999/audit").status_code == 404
    assert client.get("/curate/places/999").status_code == 404
    assert client.post("/curate/tags/999", data={"name": "x"}).status_code == 404


# --------------------------------------------------------------------------------------------------------------------
# The queue


def test_the_queue_is_oldest_first_and_filters_by_status_and_association(client: FlaskClient,
                                                                         people: dict[str, User]) -> None:
    newer = add_photo("Neuere Einreichung", age_days=1)
    oldest = add_photo("Älteste Einreichung", slug="lorient", status=S.IN_REVIEW, age_days=5)
    middle = add_photo("Mittlere Einreichung", age_days=3)
    published = add_photo("Schon öffentlich", status=S.PUBLISHED, age_days=9)
    returned = add_photo("Zurückgegeben", status=S.RETURNED, age_days=2)
    login(client, "cora")

    page = client.get("/curate").get_data(as_text=True)
    assert queue_ids(page) == [oldest, middle, newer]  # submitted and in review, the oldest first
    assert "Schon öffentlich" not in page

    assert queue_ids(client.get("/curate?association=pasadena").get_data(as_text=True)) == [middle, newer]
    assert queue_ids(client.get("/curate?status=published").get_data(as_text=True)) == [published]
    assert queue_ids(client.get("/curate?status=returned&association=pasadena").get_data(as_text=True)) == [returned]
    assert queue_ids(client.get("/curate?status=in_review").get_data(as_text=True)) == [oldest]
    assert client.get("/curate?status=returned&association=lorient").get_data(as_text=True).count("pick-") == 0
    assert client.get("/curate?status=nonsense").status_code == 400
    assert client.get("/curate?association=atlantis").status_code == 404


def test_the_queue_is_paged(client: FlaskClient, people: dict[str, User]) -> None:
    ids = [add_photo(f"Foto {i:02}", age_days=100 - i) for i in range(55)]
    login(client, "cora")
    first = client.get("/curate").get_data(as_text=True)
    second = client.get("/curate?page=2").get_data(as_text=True)
    assert queue_ids(first) == ids[:50]
    assert queue_ids(second) == ids[50:]
    assert "Seite 1 von 2" in first and "/curate?page=2" in first
    assert queue_ids(client.get("/curate?page=99").get_data(as_text=True)) == ids[50:]  # past the end: the last


def test_a_queue_row_has_thumbnail_title_association_date_status_gaps_and_links(
        client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    response = client.post("/upload", data={"photos": [(io.BytesIO(jpeg_bytes((10, 120, 200))), "rhein.jpg")]},
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    photo_id = response.get_json()["results"][0]["photo_id"]
    login(client, "cora")
    page = client.get("/curate").get_data(as_text=True)
    assert f"/media/{photo_id}/thumb.jpg" in page
    assert f'href="/photos/{photo_id}"' in page and f'href="/curate/photos/{photo_id}/audit"' in page
    assert "rhein.jpg" in page  # no title yet: the file's name stands in
    assert "Freundeskreis Ludwigshafen-Pasadena" in page
    assert utcnow().strftime("%Y") in page
    assert "eingereicht, wartet auf Prüfung" in page
    assert "ein Titel (Deutsch)" in page and "eine Lizenz" in page  # what is missing for publication
    # Every checkbox has a label, and the bulk buttons carry access keys.
    assert f'<label for="pick-{photo_id}"><span class="visually-hidden">„rhein.jpg“ auswählen' in page
    assert 'value="publish" accesskey="v"' in page
    assert "<script>" not in page and "style=" not in page  # the CSP allows neither inline


# --------------------------------------------------------------------------------------------------------------------
# Bulk actions


def test_bulk_publish_confirms_first_then_publishes_the_complete_and_names_the_gaps_of_the_rest(
        client: FlaskClient, people: dict[str, User]) -> None:
    ready = [add_photo(f"Brücke {i}", age_days=5 - i) for i in range(3)]
    for photo_id in ready:
        complete(photo_id, people["curator"])
    incomplete = add_photo("Ohne Angaben", age_days=1)
    login(client, "cora")

    confirm = bulk(client, "publish", [*ready, incomplete])
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    assert "Bitte bestätigen" in page and "3 gehen durch, 1 nicht" in page
    assert "der Prüfschritt lässt es nicht durch" in page and "eine Lizenz" in page
    assert page.count('name="photo_ids"') == 4 and 'name="confirm" value="1"' in page
    assert [status_of(i) for i in [*ready, incomplete]] == [S.SUBMITTED] * 4  # nothing has happened yet
    assert audit_actions(prefix="photo.publish") == []

    done = bulk(client, "publish", [*ready, incomplete], confirm=True)
    assert done.status_code == 302 and done.headers["Location"] == "/curate"
    assert [status_of(i) for i in ready] == [S.PUBLISHED] * 3
    assert status_of(incomplete) == S.SUBMITTED
    assert audit_actions(prefix="photo.publish") == ["photo.publish"] * 3
    queue = client.get("/curate").get_data(as_text=True)
    assert ("3 veröffentlicht, 1 abgelehnt vom Prüfschritt: „Ohne Angaben“ kann noch nicht veröffentlicht werden. "
            "Es fehlt: eine Bildunterschrift") in queue
    assert queue_ids(queue) == [incomplete]


def test_bulk_keeps_the_queue_filters_and_says_what_cannot_be_done(client: FlaskClient,
                                                                  people: dict[str, User]) -> None:
    published = add_photo("Schon öffentlich", status=S.PUBLISHED)
    waiting = add_photo("Wartet")
    complete(waiting, people["curator"])
    login(client, "cora")
    page = client.post("/curate/bulk?association=pasadena&status=open",
                       data={"action": "publish", "photo_ids": [str(published), str(waiting)]}).get_data(as_text=True)
    assert "ist „veröffentlicht“ und kann deshalb nicht veröffentlicht werden" in page
    assert 'action="/curate/bulk?association=pasadena"' in page
    done = client.post("/curate/bulk?association=pasadena", data={
        "action": "publish", "photo_ids": [str(published), str(waiting)], "confirm": "1"})
    assert done.headers["Location"] == "/curate?association=pasadena"
    flash = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "1 veröffentlicht, 1 nicht möglich: „Schon öffentlich“ ist veröffentlicht" in flash
    assert status_of(waiting) == S.PUBLISHED


@pytest.mark.parametrize(("action", "target"), [("return", S.RETURNED), ("reject", S.REJECTED)])
def test_return_and_reject_need_a_reason(client: FlaskClient, people: dict[str, User], action: str,
                                         target: PhotoStatus) -> None:
    ids = [add_photo("Erstes", age_days=2), add_photo("Zweites", age_days=1)]
    login(client, "cora")

    first = bulk(client, action, ids)  # from the queue, without a reason
    assert first.status_code == 422
    assert "Bitte geben Sie einen Grund an" in first.get_data(as_text=True)
    forced = bulk(client, action, ids, confirm=True, reason="   ")
    assert forced.status_code == 422
    assert [status_of(i) for i in ids] == [S.SUBMITTED] * 2
    assert audit_actions(prefix=f"photo.{action}") == []

    asked = bulk(client, action, ids, reason="Bitte ohne Wasserzeichen")
    assert asked.status_code == 200
    assert [status_of(i) for i in ids] == [S.SUBMITTED] * 2
    assert "Bitte ohne Wasserzeichen</textarea>" in asked.get_data(as_text=True)

    done = bulk(client, action, ids, confirm=True, reason="Bitte ohne Wasserzeichen")
    assert done.status_code == 302
    db.session.expire_all()
    photos = [db.session.get(Photo, i) for i in ids]
    assert [p.status for p in photos] == [target] * 2
    assert {p.status_reason for p in photos} == {"Bitte ohne Wasserzeichen"}
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == f"photo.{action}"))
    assert event.detail["reason"] == "Bitte ohne Wasserzeichen" and event.actor_id == people["curator"].id


def test_bulk_tag_adds_a_controlled_tag_to_every_selected_photo(client: FlaskClient,
                                                                people: dict[str, User]) -> None:
    ids = [add_photo("Eins", age_days=3), add_photo("Zwei", age_days=2), add_photo("Drei", age_days=1)]
    tag = controlled_tag("Rheinbrücke")
    free = Tag(name="sonnenuntergang", controlled=False)
    db.session.add(free)
    db.session.commit()
    already = db.session.get(Photo, ids[2])
    workflow.update_photo(db.session, already, workflow.RightsChange(tag_ids=[tag.id], keywords=["abend"]),
                          people["curator"])
    tag_id, free_id = tag.id, free.id
    login(client, "cora")

    page = bulk(client, "tag", ids, tag_id=str(tag_id)).get_data(as_text=True)
    assert "bekommt das Schlagwort „Rheinbrücke“" in page and "hat das Schlagwort „Rheinbrücke“ schon" in page
    db.session.expire_all()
    assert [t.name for t in db.session.get(Photo, ids[0]).tags] == []

    done = bulk(client, "tag", ids, confirm=True, tag_id=str(tag_id))
    assert done.status_code == 302
    db.session.expire_all()
    assert [[t.name for t in db.session.get(Photo, i).tags] for i in ids] == [
        ["Rheinbrücke"], ["Rheinbrücke"], ["Rheinbrücke", "abend"]]  # free keywords stay
    assert audit_actions(ids[0], "photo.") == ["photo.edited"]
    flash = client.get("/curate").get_data(as_text=True)
    assert "Schlagwort „Rheinbrücke“: 2 ergänzt, 1 hatten es schon" in flash

    refused = bulk(client, "tag", ids, tag_id=str(free_id))
    assert refused.status_code == 422  # only the curators' list
    assert bulk(client, "tag", ids).status_code == 422


def test_bulk_refuses_what_makes_no_sense(client: FlaskClient, people: dict[str, User]) -> None:
    photo_id = add_photo("Eins")
    login(client, "cora")
    assert bulk(client, "publish", []).status_code == 422
    assert bulk(client, "explode", [photo_id]).status_code == 400
    assert bulk(client, "publish", [photo_id, 99999]).status_code == 404
    assert client.post("/curate/bulk", data={"action": "publish", "photo_ids": ["x"]}).status_code == 400
    assert status_of(photo_id) == S.SUBMITTED


# --------------------------------------------------------------------------------------------------------------------
# Places and tags


def test_places_are_listed_added_and_edited_with_clear_refusals(client: FlaskClient,
                                                                people: dict[str, User]) -> None:
    login(client, "cora")
    added = client.post("/curate/places", data={"name": " Konrad-Adenauer-Brücke ", "city": "Ludwigshafen am Rhein",
                                                "lat": "49,4836", "lon": "8.4516"})
    assert added.status_code == 302
    place = db.session.scalar(select(Place).where(Place.name == "Konrad-Adenauer-Brücke"))
    assert (place.city, place.lat, place.lon) == ("Ludwigshafen am Rhein", 49.4836, 8.4516)
    listing = client.get("/curate/places").get_data(as_text=True)
    assert "Konrad-Adenauer-Brücke" in listing and "49,4836" in listing

    duplicate = client.post("/curate/places", data={"name": "konrad-adenauer-brücke", "city": "ludwigshafen am rhein"})
    assert duplicate.status_code == 409
    text_ = duplicate.get_data(as_text=True)
    assert "steht schon in der Liste" in text_ and "is already in the list" in text_
    assert 'value="konrad-adenauer-brücke"' in text_  # what was typed stays in the form

    for lat, lon, word in (("91", "8", "Breitengrad"), ("49", "-181", "Längengrad"), ("Nord", "8", "Breitengrad"),
                           ("49", "", "zusammen")):
        bad = client.post("/curate/places", data={"name": "Rheinbrücke", "city": "Mannheim", "lat": lat, "lon": lon})
        assert bad.status_code == 422, (lat, lon)
        assert word in bad.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Place)) == 1

    other = client.post("/curate/places", data={"name": "Rheinbrücke", "city": "Mannheim"})
    assert other.status_code == 302
    other_id = db.session.scalar(select(Place.id).where(Place.name == "Rheinbrücke"))
    form = client.get(f"/curate/places/{other_id}").get_data(as_text=True)
    assert 'value="Rheinbrücke"' in form and 'value="Mannheim"' in form
    clash = client.post(f"/curate/places/{other_id}", data={"name": "Konrad-Adenauer-Brücke",
                                                            "city": "Ludwigshafen am Rhein"})
    assert clash.status_code == 409
    moved = client.post(f"/curate/places/{other_id}", data={"name": "Kurt-Schumacher-Brücke", "city": "Mannheim",
                                                            "lat": "49.4877", "lon": "8.4550"})
    assert moved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Place, other_id).name == "Kurt-Schumacher-Brücke"
    assert audit_actions(prefix="place.") == ["place.created", "place.created", "place.changed"]
    changed = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "place.changed"))
    assert changed.detail["before"] == {"name": "Rheinbrücke", "lat": None, "lon": None}
    assert changed.detail["after"] == {"name": "Kurt-Schumacher-Brücke", "lat": 49.4877, "lon": 8.455}
    assert (changed.subject, changed.subject_id, changed.actor_id) == ("place", other_id, people["curator"].id)


def test_tags_are_listed_with_counts_added_renamed_and_promoted(client: FlaskClient,
                                                                people: dict[str, User]) -> None:
    photo_id = add_photo("Eins")
    login(client, "cora")
    assert client.post("/curate/tags", data={"name": "Brücke"}).status_code == 302
    brücke = db.session.scalar(select(Tag).where(Tag.name == "Brücke"))
    assert brücke.controlled
    duplicate = client.post("/curate/tags", data={"name": "BRÜCKE"})
    assert duplicate.status_code == 409
    assert "steht schon in der Liste" in duplicate.get_data(as_text=True)
    assert client.post("/curate/tags", data={"name": "  "}).status_code == 422

    workflow.update_photo(db.session, db.session.get(Photo, photo_id),
                          workflow.RightsChange(tag_ids=[brücke.id], keywords=["Abendrot"]), people["curator"])
    abendrot_id = db.session.scalar(select(Tag.id).where(Tag.name == "Abendrot"))
    page = client.get("/curate/tags").get_data(as_text=True)
    assert re.search(r"<td>Brücke</td>\s*<td>1</td>", page)
    assert re.search(r"<td>Abendrot</td>\s*<td>1</td>", page)  # a free keyword, offered for the list
    assert f'action="/curate/tags/{abendrot_id}/promote"' in page

    renamed = client.post(f"/curate/tags/{brücke.id}", data={"name": "Rheinbrücke"})
    assert renamed.status_code == 302
    clash = client.post(f"/curate/tags/{brücke.id}", data={"name": "abendrot"})
    assert clash.status_code == 409 and "als freies Schlagwort" in clash.get_data(as_text=True)
    assert client.post(f"/curate/tags/{abendrot_id}/promote").status_code == 302
    assert client.post(f"/curate/tags/{abendrot_id}/promote").status_code == 409

    db.session.expire_all()
    assert [(t.name, t.controlled) for t in db.session.get(Photo, photo_id).tags] == [
        ("Abendrot", True), ("Rheinbrücke", True)]
    assert audit_actions(prefix="tag.") == ["tag.created", "tag.renamed", "tag.controlled"]


# --------------------------------------------------------------------------------------------------------------------
# The audit log


def test_the_audit_pages_show_who_did_what_with_before_and_after(client: FlaskClient,
                                                                 people: dict[str, User]) -> None:
    login(client, "mia")
    response = client.post("/upload", data={"photos": [(io.BytesIO(jpeg_bytes((80, 20, 160))), "hafen.jpg")]},
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    photo_id = response.get_json()["results"][0]["photo_id"]
    complete(photo_id, people["curator"])
    photo = db.session.get(Photo, photo_id)
    workflow.transition(db.session, photo, "return", people["curator"], "Titel fehlt")
    other = add_photo("Anderes Foto")
    login(client, "cora")

    page = client.get(f"/curate/photos/{photo_id}/audit").get_data(as_text=True)
    for words in ("Foto hochgeladen", "Bilder erzeugt", "Rechteangaben geändert", "an den Verein zurückgegeben",
                  "Grund:</strong> Titel fehlt", "mia", "cora", "Archiv"):
        assert words in page, words
    assert re.search(r'<span class="before">eingereicht, wartet auf Prüfung</span>.*→.*'
                     r'<span class="after">zurückgegeben</span>', page, re.S)
    assert re.search(r'<span class="before">noch nicht angegeben</span>.*→.*'
                     r'<span class="after">keine erkennbaren Personen</span>', page, re.S)
    assert "Konrad-Adenauer-Brücke, Ludwigshafen am Rhein" in page  # the place by name, not its number
    assert page.index("an den Verein zurückgegeben") < page.index("Foto hochgeladen")  # newest first

    everything = client.get("/curate/audit").get_data(as_text=True)
    assert f'href="/curate/photos/{photo_id}/audit">„hafen.jpg“</a>' in everything
    only_photos = client.get("/curate/audit?action=photo.return").get_data(as_text=True)
    assert "an den Verein zurückgegeben" in only_photos and "Rechteangaben geändert" not in only_photos
    assert "Keine Einträge" in client.get("/curate/audit?action=consent.").get_data(as_text=True)
    assert client.get("/curate/audit?action=<script>").status_code == 400
    assert "Anderes Foto" not in page and other != photo_id


def test_the_audit_log_is_paged_newest_first(client: FlaskClient, people: dict[str, User]) -> None:
    for number in range(55):
        audit.record(db.session, "place.created", actor=people["admin"], subject="place", subject_id=number,
                     after={"name": f"Ort {number}"})
    db.session.commit()
    login(client, "ada")
    first = client.get("/curate/audit").get_data(as_text=True)
    second = client.get("/curate/audit?page=2").get_data(as_text=True)
    assert "Ort 54" in first and "Ort 5<" in first and "Ort 4<" not in first
    assert "Ort 4<" in second and "Ort 0<" in second and "Seite 2 von 2" in second


def test_unknown_actions_are_shown_as_they_are(client: FlaskClient, people: dict[str, User]) -> None:
    audit.record(db.session, "user.role_changed", actor=None, subject="user", subject_id=people["member"].id,
                 before={"role": "member"}, after={"role": "curator"})
    db.session.commit()
    login(client, "cora")
    page = client.get("/curate/audit?action=user.").get_data(as_text=True)
    assert "user.role_changed" in page and "Konto „mia“" in page and "Archiv" in page
    assert re.search(r'<span class="before">member</span>.*→.*<span class="after">curator</span>', page, re.S)


def test_audit_rows_cannot_be_updated_or_deleted(app: Flask, people: dict[str, User]) -> None:
    audit.record(db.session, "place.created", actor=people["curator"], subject="place", subject_id=1,
                 after={"name": "Rheinbrücke"})
    db.session.commit()
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError):
            db.session.execute(text(statement))
        db.session.rollback()
    assert audit_actions() == ["place.created"]
