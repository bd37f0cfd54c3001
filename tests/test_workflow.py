"""The curators' workflow: the lifecycle, the publication gate, the rights bundle, consent and its withdrawal,
ownership, and the audit entries each change leaves."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from archive import workflow
from archive.errors import Refusal
from archive.indexing import apply_outbox
from archive.models import AuditEvent, ConsentScope, Licence, PeopleShown, Photo, PhotoStatus, User, db
from archive.search import Viewer, parse_query
from archive.services import get_search_index
from tests.conftest import jpeg_bytes, login
from tests.photos import a_place, complete_bundle, publish, upload, upload_one


def events(photo_id: int, prefix: str = "") -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.photo_id == photo_id,
                                                            AuditEvent.action.startswith(prefix))
                                   .order_by(AuditEvent.id)))


@pytest.fixture
def member_photo(client: FlaskClient, people: dict[str, User]) -> int:
    login(client, "mia")
    photo_id = upload_one(client)
    client.post("/logout")
    return photo_id


def test_a_new_photo_cannot_be_published_and_the_refusal_names_every_gap(
        client: FlaskClient, people: dict[str, User], member_photo: int) -> None:
    login(client, "cora")
    response = client.post(f"/photos/{member_photo}/status", data={"action": "publish"},
                           headers={"Accept": "application/json"})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "not_publishable"
    for words in ("Titel", "Bildunterschrift", "Alternativtext", "Fotografin", "Lizenz", "Ort",
                  "Aufnahmedatum", "erkennbare Personen", "Minderjährige"):
        assert words in error["de"], words
    assert "licence" in error["en"] and "place or bridge" in error["en"]
    assert db.session.get(Photo, member_photo).status == PhotoStatus.SUBMITTED
    assert events(member_photo, "photo.publish") == []


def test_a_complete_bundle_publishes_and_the_log_has_who_when_and_before_after(
        client: FlaskClient, people: dict[str, User], member_photo: int) -> None:
    complete_bundle(member_photo, people["member"])
    rights = events(member_photo, "photo.rights_changed")[-1]
    assert rights.actor_id == people["member"].id
    assert rights.detail["before"]["licence"] is None and rights.detail["after"]["licence"] == "cc-by-4.0"
    assert rights.detail["after"]["people"] == "none" and rights.detail["before"]["people"] == "unknown"

    login(client, "cora")
    assert client.post(f"/photos/{member_photo}/status", data={"action": "publish"}).status_code == 302
    photo = db.session.get(Photo, member_photo)
    db.session.refresh(photo)
    assert photo.status == PhotoStatus.PUBLISHED
    published = events(member_photo, "photo.publish")
    assert len(published) == 1 and published[0].actor_id == people["curator"].id
    assert published[0].detail["before"] == {"status": "submitted"}
    assert published[0].detail["after"] == {"status": "published"}
    client.post("/logout")
    page = client.get(f"/photos/{member_photo}").get_data(as_text=True)
    assert "Foto: Anna Beispiel · CC BY 4.0" in page
    assert "Konrad-Adenauer-Brücke" in page and "Eine Stahlbrücke über einen breiten Fluss" in page


@pytest.mark.parametrize(("people_shown", "minors", "consents", "missing"), [
    (PeopleShown.UNKNOWN, False, [], {"people"}),
    (PeopleShown.CONSENT, False, [], {"consent"}),
    (PeopleShown.CONSENT, False, [dict(scopes={ConsentScope.EXHIBITION})], {"consent"}),
    (PeopleShown.CONSENT, False, [dict(scopes={ConsentScope.WEB})], set()),
    (PeopleShown.CONSENT, True, [dict(scopes={ConsentScope.WEB})], {"guardian_consent"}),
    (PeopleShown.CONSENT, True, [dict(scopes={ConsentScope.WEB}, by_guardian=True)], set()),
    (PeopleShown.NONE, None, [], {"minors"}),
    (PeopleShown.PUBLIC_EVENT, False, [], {"public_event_reason"}),
])
def test_the_gate_asks_for_the_legal_basis_of_people_shown(
        people: dict[str, User], member_photo: int, people_shown: PeopleShown, minors: bool | None,
        consents: list[dict], missing: set[str]) -> None:
    photo = complete_bundle(member_photo, people["curator"], people=people_shown)
    photo.minors = minors
    db.session.commit()
    for consent in consents:
        workflow.record_consent(db.session, photo, people["member"], person="Lena K.", given_on=date(2024, 6, 1),
                                **consent)
    assert {gap.field for gap in workflow.publication_gaps(photo)} == missing


def test_only_curators_justify_a_public_event(people: dict[str, User], member_photo: int) -> None:
    photo = db.session.get(Photo, member_photo)
    with pytest.raises(Refusal) as refused:
        workflow.update_photo(db.session, photo, workflow.RightsChange(public_event_reason="Stadtfest"),
                              people["member"])
    assert refused.value.status == 403
    complete_bundle(member_photo, people["curator"], people=PeopleShown.PUBLIC_EVENT,
                    public_event_reason="Brückenfest 2024, öffentliche Veranstaltung; Personen sind Beiwerk.")
    assert workflow.publication_gaps(db.session.get(Photo, member_photo)) == []


def test_lifecycle_paths_reasons_and_roles(client: FlaskClient, people: dict[str, User], member_photo: int) -> None:
    login(client, "mia")  # a member cannot move their photo along, except sending a returned one back
    assert client.post(f"/photos/{member_photo}/status", data={"action": "review"}).status_code == 403
    client.post("/logout")
    login(client, "cora")
    assert client.post(f"/photos/{member_photo}/status", data={"action": "fly"}).status_code == 400
    assert client.post(f"/photos/{member_photo}/status", data={"action": "withdraw", "reason": "x"}).status_code == 409
    no_reason = client.post(f"/photos/{member_photo}/status", data={"action": "return"})
    assert no_reason.status_code == 422 and "Grund" in no_reason.get_data(as_text=True)
    assert client.post(f"/photos/{member_photo}/status", data={"action": "review"}).status_code == 302
    assert client.post(f"/photos/{member_photo}/status",
                       data={"action": "return", "reason": "Bitte Fotografin nennen"}).status_code == 302
    client.post("/logout")

    login(client, "mia")
    page = client.get(f"/photos/{member_photo}").get_data(as_text=True)
    assert "zurückgegeben" in page and "Bitte Fotografin nennen" in page
    assert client.post(f"/photos/{member_photo}/status", data={"action": "resubmit"}).status_code == 302
    client.post("/logout")
    login(client, "omar")  # another association: the photo does not exist for them
    assert client.post(f"/photos/{member_photo}/status", data={"action": "resubmit"}).status_code == 404
    assert [e.detail["after"]["status"] for e in events(member_photo, "photo.")
            if "after" in e.detail and "status" in e.detail["after"]] == ["in_review", "returned", "submitted"]


def test_request_fields_cannot_change_owner_or_status(client: FlaskClient, people: dict[str, User],
                                                       member_photo: int) -> None:
    other = db.session.scalar(select(Photo.association_id).where(Photo.id == member_photo))
    login(client, "mia")
    response = client.post(f"/photos/{member_photo}/edit", data={
        "title": "Neu", "status": "published", "association_id": "2", "association": "lorient",
        "uploader_id": "99"})
    assert response.status_code == 302
    photo = db.session.get(Photo, member_photo)
    db.session.refresh(photo)
    assert (photo.title, photo.status, photo.association_id) == ("Neu", PhotoStatus.SUBMITTED, other)
    assert client.post(f"/photos/{member_photo}/owner", data={"association": "lorient"}).status_code == 403
    client.post("/logout")

    login(client, "cora")
    assert client.post(f"/photos/{member_photo}/owner", data={"association": "lorient"}).status_code == 302
    moved = events(member_photo, "photo.owner_changed")[-1]
    assert moved.detail == {"before": {"association": "pasadena"}, "after": {"association": "lorient"}}
    client.post("/logout")
    login(client, "mia")  # no longer theirs, and not published: gone for them
    assert client.get(f"/photos/{member_photo}").status_code == 404
    assert client.get(f"/photos/{member_photo}/edit").status_code == 404


def test_members_do_not_edit_published_photos_and_curators_cannot_break_the_gate(
        client: FlaskClient, people: dict[str, User], member_photo: int) -> None:
    complete_bundle(member_photo, people["member"])
    publish(member_photo, people["curator"])
    login(client, "mia")
    assert client.get(f"/photos/{member_photo}/edit").status_code == 403
    client.post("/logout")
    login(client, "cora")
    response = client.post(f"/photos/{member_photo}/edit", data={"credit": "", "people": "unknown"})
    assert response.status_code == 409
    assert "zuerst zurück" in response.get_data(as_text=True)
    photo = db.session.get(Photo, member_photo)
    db.session.refresh(photo)
    assert photo.credit == "Anna Beispiel" and photo.people == PeopleShown.NONE


def test_the_edit_form_keeps_what_was_typed_when_refused(client: FlaskClient, people: dict[str, User],
                                                        member_photo: int) -> None:
    login(client, "mia")
    response = client.post(f"/photos/{member_photo}/edit",
                           data={"title": "Mein Titel", "taken_at": "gestern", "caption": "Text bleibt"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "kein gültiges Datum" in body and 'value="Mein Titel"' in body and "Text bleibt" in body
    assert db.session.get(Photo, member_photo).title != "Mein Titel"  # nothing half-saved


def test_typed_text_is_stored_without_control_characters_or_direction_overrides(
        client: FlaskClient, people: dict[str, User], member_photo: int) -> None:
    login(client, "mia")
    response = client.post(f"/photos/{member_photo}/edit", data={
        "title": "Brücke\u202egpj.exe\x00\x1b[31m", "caption": "Erste Zeile\r\nZweite\tZeile\x07",
        "credit": " Anna\nBeispiel ", "title_en": "Bridge\u202e", "caption_en": "Line\r\nnext",
        "alt_text_en": "", "alt_text": "<b>Brücke</b>"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    photo = db.session.get(Photo, member_photo)
    db.session.refresh(photo)
    assert (photo.title, photo.caption, photo.credit) == ("Brückegpj.exe[31m", "Erste Zeile\nZweite Zeile",
                                                          "Anna Beispiel")
    assert photo.alt_text == "<b>Brücke</b>"  # markup is words here; every page escapes it
    english = next(t for t in photo.translations if t.lang == "en")
    assert (english.title, english.caption) == ("Bridge", "Line\nnext")


def test_translations_tags_and_place_are_saved_and_searchable(client: FlaskClient, people: dict[str, User],
                                                              member_photo: int) -> None:
    place = a_place()
    login(client, "mia")
    response = client.post(f"/photos/{member_photo}/edit", data={
        "title": "Brücke am Abend", "caption": "Die Brücke über den Rhein", "alt_text": "Stahlbrücke",
        "title_en": "Bridge at dusk", "caption_en": "The bridge across the Rhine", "alt_text_en": "",
        "title_fr": "", "caption_fr": "", "alt_text_fr": "",
        "place": str(place.id), "taken_at": "2023-05-04T18:00", "tags_shown": "1", "keywords": "Abend, Rhein,",
    })
    assert response.status_code == 302, response.get_data(as_text=True)
    photo = db.session.get(Photo, member_photo)
    db.session.refresh(photo)
    assert [(t.lang, t.title) for t in photo.translations] == [("en", "Bridge at dusk")]
    assert sorted(t.name for t in photo.tags) == ["Abend", "Rhein"]
    assert photo.place_id == place.id and photo.taken_at.year == 2023
    result = get_search_index().search(parse_query("across Rhine"), Viewer(sees_everything=True))
    assert [hit.id for hit in result.hits] == [member_photo]
    assert result.facets["place"] == {"Konrad-Adenauer-Brücke, Ludwigshafen am Rhein": 1}


def test_withdrawn_consent_unpublishes_at_once_pages_media_and_search(
        app: Flask, client: FlaskClient, people: dict[str, User], member_photo: int) -> None:
    photo = complete_bundle(member_photo, people["member"], people=PeopleShown.CONSENT)
    consent = workflow.record_consent(db.session, photo, people["member"], person="Lena K.",
                                      given_on=date.today() - timedelta(days=3), scopes={ConsentScope.WEB})
    publish(member_photo, people["curator"])
    index = get_search_index()
    apply_outbox(db.session, index)
    assert client.get(f"/media/{member_photo}/thumb.jpg").status_code == 200
    assert client.get("/api/v1/search?q=Konrad-Adenauer-Brücke").get_json()["total"] == 1

    # Recorded by a member (no search writer runs: the index still shows the photo as published) ...
    workflow.withdraw_consent(db.session, photo, consent, people["member"], "Frau K. möchte nicht mehr")
    assert db.session.get(Photo, member_photo).status == PhotoStatus.WITHDRAWN
    assert index.search(parse_query("Konrad-Adenauer-Brücke"), Viewer()).total == 1  # stale, on purpose
    # ... the very next requests no longer show anything of it.
    assert client.get(f"/media/{member_photo}/thumb.jpg").status_code == 404
    assert client.get(f"/media/{member_photo}/preview.webp").status_code == 404
    assert client.get(f"/photos/{member_photo}").status_code == 404
    found = client.get("/api/v1/search?q=Konrad-Adenauer-Brücke").get_json()
    assert found["total"] == 0 and found["facets"]["association"] == {}
    page = client.get("/search?q=Abendlicht").get_data(as_text=True)
    assert f"/photos/{member_photo}" not in page and "über der Konrad" not in page
    assert str(member_photo) not in [str(h["id"]) for h in client.get("/api/v1/search").get_json()["hits"]]
    # The log says who recorded it, and that the archive withdrew the photo because of it.
    withdrawn = events(member_photo, "photo.withdraw")[-1]
    assert withdrawn.actor_id == people["member"].id and withdrawn.detail["automatic"] is True
    assert events(member_photo, "consent.withdrawn")[-1].detail["reason"] == "Frau K. möchte nicht mehr"


def test_withdrawing_consent_through_the_page(client: FlaskClient, people: dict[str, User],
                                              member_photo: int) -> None:
    photo = complete_bundle(member_photo, people["member"], people=PeopleShown.CONSENT)
    login(client, "mia")
    response = client.post(f"/photos/{member_photo}/consents", data={
        "person": "Jonas P.", "given_on": "2024-05-01", "scope_web": "1", "scope_print": "1", "reference": "Ordner 3"})
    assert response.status_code == 302
    db.session.refresh(photo)
    consent = photo.consents[0]
    assert consent.scopes == [ConsentScope.WEB, ConsentScope.PRINT] and consent.recorded_by_id == people["member"].id
    assert client.post(f"/photos/{member_photo}/consents", data={"person": "X", "given_on": "2024-05-01"}
                       ).status_code == 422  # no scope chosen
    publish(member_photo, people["curator"])
    assert client.get(f"/media/{member_photo}/thumb.jpg").status_code == 200
    response = client.post(f"/photos/{member_photo}/consents/{consent.id}/withdraw", data={"reason": "widerrufen"})
    assert response.status_code == 302
    client.post("/logout")
    assert client.get(f"/media/{member_photo}/thumb.jpg").status_code == 404
    assert client.get(f"/photos/{member_photo}").status_code == 404


def test_upload_defaults_go_on_every_new_photo(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    photo_id = upload_one(client, credit="Mia Müller", licence="cc-by-sa-4.0", people="none", minors="no")
    photo = db.session.get(Photo, photo_id)
    assert (photo.credit, photo.licence, photo.people, photo.minors) == (
        "Mia Müller", Licence.CC_BY_SA, PeopleShown.NONE, False)
    refused = upload(client, [(jpeg_bytes((1, 2, 3)), "b.jpg")], licence="all-rights")
    assert refused.status_code == 422 and "Lizenz" in refused.get_json()["error"]["de"]
    assert db.session.scalar(select(func.count(Photo.id))) == 1  # the refused batch stored nothing


def test_the_audit_log_cannot_be_edited(people: dict[str, User], member_photo: int) -> None:
    assert events(member_photo)
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert all(e.action != "x" for e in events(member_photo))


def test_public_pages_show_the_place_never_the_photos_own_gps(client: FlaskClient, people: dict[str, User],
                                                              member_photo: int) -> None:
    photo = complete_bundle(member_photo, people["member"])
    photo.gps_lat, photo.gps_lon = 49.4812345, 8.4456789
    db.session.commit()
    publish(member_photo, people["curator"])
    public = client.get(f"/photos/{member_photo}").get_data(as_text=True)
    api = client.get("/api/v1/search?q=Brücke").get_data(as_text=True)
    for answer in (public, api):
        assert "49.48123" not in answer and "8.44567" not in answer and "49,48123" not in answer
    assert "Konrad-Adenauer-Brücke, Ludwigshafen am Rhein" in public and "mlat=49.4836" in public  # the place's own
    login(client, "mia")  # the association itself sees the exact position, marked as not public
    assert "49.48123" in client.get(f"/photos/{member_photo}").get_data(as_text=True)


def test_one_persons_withdrawal_unpublishes_even_when_others_consented(people: dict[str, User],
                                                                       member_photo: int) -> None:
    photo = complete_bundle(member_photo, people["member"], people=PeopleShown.CONSENT)
    first, _second = (workflow.record_consent(db.session, photo, people["member"], person=name,
                                              given_on=date(2024, 5, 1), scopes={ConsentScope.WEB})
                      for name in ("Lena K.", "Jonas P."))
    publish(member_photo, people["curator"])
    workflow.withdraw_consent(db.session, photo, first, people["member"])
    assert db.session.get(Photo, member_photo).status == PhotoStatus.WITHDRAWN
    assert workflow.publication_gaps(photo) == []  # a curator may look again and publish, e.g. cropped


def test_a_publication_and_a_withdrawal_at_the_same_moment_cannot_both_land(
        app: Flask, people: dict[str, User], member_photo: int) -> None:
    from sqlalchemy.orm import Session
    from sqlalchemy.orm.exc import StaleDataError

    photo = complete_bundle(member_photo, people["member"], people=PeopleShown.CONSENT)
    consent = workflow.record_consent(db.session, photo, people["member"], person="Lena K.",
                                      given_on=date(2024, 5, 1), scopes={ConsentScope.WEB})
    with Session(db.engine) as curator_session:  # the curator's request has loaded the photo (in review) ...
        seen = curator_session.get(Photo, member_photo)
        assert workflow.publication_gaps(seen) == []
        # ... when the member's request records the withdrawal and commits first.
        workflow.withdraw_consent(db.session, photo, consent, people["member"])
        with pytest.raises(StaleDataError):
            workflow.transition(curator_session, seen, "publish", curator_session.get(User, people["curator"].id))
        curator_session.rollback()
    db.session.expire_all()
    assert db.session.get(Photo, member_photo).status == PhotoStatus.SUBMITTED
    assert events(member_photo, "photo.publish") == []


def test_the_changed_meanwhile_refusal_reaches_people_as_a_409(client: FlaskClient, people: dict[str, User],
                                                               member_photo: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import update

    real = workflow.publication_gaps

    def someone_else_edits_first(photo: Photo, *args: object) -> list:
        with db.engine.begin() as connection:  # another request's commit, between our read and our write
            connection.execute(update(Photo).where(Photo.id == photo.id).values(version=Photo.version + 1))
        return real(photo, *args)

    complete_bundle(member_photo, people["member"])
    monkeypatch.setattr(workflow, "publication_gaps", someone_else_edits_first)
    login(client, "cora")
    response = client.post(f"/photos/{member_photo}/status", data={"action": "publish"},
                           headers={"Accept": "application/json"})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "changed_meanwhile"
    db.session.expire_all()
    assert db.session.get(Photo, member_photo).status == PhotoStatus.SUBMITTED


def test_processing_keeps_what_people_saved_while_it_ran(app: Flask, client: FlaskClient,
                                                         people: dict[str, User],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from archive import media, sandbox

    real = sandbox.run

    def with_an_edit_meanwhile(func: object, *args: object, **kwargs: object) -> object:
        result = real(func, *args, **kwargs)  # the decoding child runs as always ...
        if func is media.make_derivatives:  # ... and the upload form's rights land while the images are made
            with db.engine.begin() as connection:
                connection.execute(text("UPDATE photos SET credit = 'Mia Müller', version = version + 1"))
        return result

    monkeypatch.setattr(sandbox, "run", with_an_edit_meanwhile)
    login(client, "mia")
    photo_id = upload_one(client)
    db.session.expire_all()
    photo = db.session.get(Photo, photo_id)
    assert photo.status == PhotoStatus.SUBMITTED and len(photo.derivatives) == 4
    assert photo.credit == "Mia Müller"


def test_odd_numbers_in_forms_and_urls_are_refusals_not_errors(client: FlaskClient, people: dict[str, User],
                                                                member_photo: int) -> None:
    login(client, "cora")
    assert client.get("/photos/99999999999999999999").status_code == 404
    assert client.get("/media/99999999999999999999/thumb.jpg").status_code == 404
    assert client.get("/photos?page=99999999999999999999").status_code == 200
    for value in ("²", "99999999999999999999", "-1"):
        response = client.post(f"/photos/{member_photo}/edit", data={"place": value, "tags_shown": "1",
                                                                     "tags": value})
        assert response.status_code == 302, value
    response = client.post(f"/photos/{member_photo}/edit", data={"keywords": "Brücke, brücke, BRÜCKE"})
    assert response.status_code == 302
    assert [t.name for t in db.session.get(Photo, member_photo).tags] == ["Brücke"]
