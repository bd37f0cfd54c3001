"""Ratings and shortlists: per-curator stars and their average, the states a photo can be rated in, shortlists
(unique names ignoring case, bulk add and remove, rename, delete with confirmation, the audit log), the forms on
the photo page, the queue, the grid and the search results, and who may do any of it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from archive import selection, workflow
from archive.errors import Refusal
from archive.models import AuditEvent, Photo, PhotoStatus, Rating, Shortlist, User, db, shortlist_photos
from archive.services import get_jobs
from tests.conftest import login, recorded_statements
from tests.photos import complete_bundle, publish, upload_one

S = PhotoStatus


def as_user(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    login(client, username)
    return client


@pytest.fixture
def member(client: FlaskClient, people: dict[str, User]) -> FlaskClient:
    login(client, "mia")
    return client


@pytest.fixture
def cora(app: Flask, people: dict[str, User]) -> FlaskClient:
    return as_user(app, "cora")


def a_photo(member: FlaskClient, people: dict[str, User], n: int, state: S = S.PUBLISHED,
            title: str = "Die Brücke über den Rhein") -> int:
    photo_id = upload_one(member, (20 + n * 23 % 200, 60 + n * 7 % 150, 90 + n * 11 % 160))
    complete_bundle(photo_id, people["member"], title=title)
    if state == S.PUBLISHED:
        publish(photo_id, people["curator"])
    elif state == S.IN_REVIEW:
        workflow.transition(db.session, db.session.get(Photo, photo_id), "review", people["curator"])
    elif state != S.SUBMITTED:
        db.session.get(Photo, photo_id).status = state
        db.session.commit()
    return photo_id


def flashes(response: Any) -> str:
    return " ".join(re.findall(r'<p class="flash [^"]*"[^>]*>(.*?)</p>', response.get_data(as_text=True), re.S))


def list_ids(shortlist_id: int) -> list[int]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(shortlist_photos.c.photo_id)
                                     .where(shortlist_photos.c.shortlist_id == shortlist_id)))


def a_shortlist(name: str) -> Shortlist:
    db.session.expire_all()
    shortlist = db.session.scalar(select(Shortlist).where(Shortlist.name == name))
    assert shortlist is not None, f"no shortlist {name!r}"
    return shortlist


# --------------------------------------------------------------------------------------------------------------------
# Ratings


def test_each_curator_has_their_own_stars_and_the_page_shows_the_average(
        app: Flask, member: FlaskClient, cora: FlaskClient, people: dict[str, User]) -> None:
    photo_id = a_photo(member, people, 1)
    ada = as_user(app, "ada")
    page = f"/photos/{photo_id}"
    assert "Noch nicht bewertet" in cora.get(page).get_data(as_text=True)

    response = cora.post(f"/curate/photos/{photo_id}/rating", data={"stars": "4", "next": page})
    assert response.status_code == 302 and response.headers["Location"] == page
    response = ada.post(f"/curate/photos/{photo_id}/rating", data={"stars": "1", "next": page},
                        follow_redirects=True)
    assert "Durchschnitt 2,5 aus 2 Bewertungen" in flashes(response)

    summary = selection.rating_summaries(db.session, [photo_id], people["curator"])[photo_id]
    assert (summary.average, summary.count, summary.mine) == (2.5, 2, 4)
    html = cora.get(page).get_data(as_text=True)
    assert "★</span> 2,5" in html and "Ihre: 4" in html
    assert re.search(r'value="4" id="stars-4"\s+checked', html), "the curator's own stars are preselected"
    assert not re.search(r'value="1" id="stars-1"\s+checked', html), "not ada's"

    # A curator changes their own rating (one row each), then clears it.
    cora.post(f"/curate/photos/{photo_id}/rating", data={"stars": "5"})
    db.session.expire_all()
    assert sorted(db.session.scalars(select(Rating.stars).where(Rating.photo_id == photo_id))) == [1, 5]
    cora.post(f"/curate/photos/{photo_id}/rating", data={"stars": ""})
    summary = selection.rating_summaries(db.session, [photo_id], people["curator"])[photo_id]
    assert (summary.average, summary.count, summary.mine) == (1.0, 1, None)
    assert re.search(r'value="" id="stars-none"\s+checked', cora.get(page).get_data(as_text=True))


@pytest.mark.parametrize("state", [S.SUBMITTED, S.RETURNED, S.REJECTED, S.WITHDRAWN, S.FAILED])
def test_only_photos_in_review_or_published_can_be_rated(member: FlaskClient, cora: FlaskClient,
                                                         people: dict[str, User], state: S) -> None:
    photo_id = a_photo(member, people, 2, state)
    response = cora.post(f"/curate/photos/{photo_id}/rating", data={"stars": "3", "next": f"/photos/{photo_id}"})
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "nur Fotos, die in Prüfung oder veröffentlicht sind" in body
    assert f'href="/photos/{photo_id}"' in body, "the way back"
    assert db.session.scalar(select(func.count()).select_from(Rating)) == 0
    page = cora.get(f"/photos/{photo_id}").get_data(as_text=True)
    assert 'name="stars"' not in page and "solange es in Prüfung oder veröffentlicht ist" in page


def test_a_photo_in_review_can_be_rated_and_bad_stars_are_refused(member: FlaskClient, cora: FlaskClient,
                                                                  people: dict[str, User]) -> None:
    photo_id = a_photo(member, people, 3, S.IN_REVIEW)
    assert cora.post(f"/curate/photos/{photo_id}/rating", data={"stars": "2"}).status_code == 302
    for bad in ("6", "-1", "drei", "2.5"):
        response = cora.post(f"/curate/photos/{photo_id}/rating", data={"stars": bad})
        assert response.status_code == 422, bad
        assert "1 bis 5 Sterne" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalars(select(Rating.stars)).all() == [2]


def test_rating_summaries_of_many_photos_take_one_query(app: Flask, member: FlaskClient,
                                                        people: dict[str, User]) -> None:
    ids = [a_photo(member, people, n) for n in range(4)]
    for photo_id, stars in zip(ids[:3], (5, 3, 1), strict=True):
        selection.rate(db.session, db.session.get(Photo, photo_id), people["curator"], stars)
    selection.rate(db.session, db.session.get(Photo, ids[0]), people["admin"], 2)
    with recorded_statements() as queries:
        summaries = selection.rating_summaries(db.session, ids, people["admin"])
    assert len(queries) == 1
    assert summaries[ids[0]] == selection.RatingSummary(3.5, 2, 2)
    assert summaries[ids[1]] == selection.RatingSummary(3.0, 1, None)
    assert summaries[ids[3]] == selection.NO_RATINGS


# --------------------------------------------------------------------------------------------------------------------
# Shortlists


def test_names_are_unique_ignoring_case_even_beyond_ascii(cora: FlaskClient, people: dict[str, User]) -> None:
    response = cora.post("/curate/shortlists", data={"name": "  Brücke   am Abend "})
    assert response.status_code == 302
    shortlist = a_shortlist("Brücke am Abend")
    assert response.headers["Location"] == f"/curate/shortlists/{shortlist.id}"
    for same in ("brücke am abend", "BRÜCKE AM ABEND"):
        response = cora.post("/curate/shortlists", data={"name": same})
        assert response.status_code == 409, same
        assert "Eine Auswahlliste „Brücke am Abend“ gibt es schon" in response.get_data(as_text=True)
    assert cora.post("/curate/shortlists", data={"name": "   "}).status_code == 422
    assert cora.post("/curate/shortlists", data={"name": "x" * 201}).status_code == 422
    cora.post("/curate/shortlists", data={"name": "Rathaus"})
    # Renaming onto another list's name is refused too; the page keeps what was typed.
    response = cora.post(f"/curate/shortlists/{shortlist.id}/rename", data={"name": "RATHAUS"})
    assert response.status_code == 409 and 'value="RATHAUS"' in response.get_data(as_text=True)
    assert cora.post(f"/curate/shortlists/{shortlist.id}/rename", data={"name": "Brücken bei Nacht"}).status_code \
        == 302
    assert a_shortlist("Brücken bei Nacht").id == shortlist.id
    page = cora.get("/curate/shortlists").get_data(as_text=True)
    assert "Brücken bei Nacht" in page and "Rathaus" in page
    with pytest.raises(Refusal) as refused:
        selection.create_shortlist(db.session, people["admin"], "rathaus")
    assert refused.value.status == 409


def test_bulk_add_and_remove_with_counts_and_the_audit_log(member: FlaskClient, cora: FlaskClient,
                                                           people: dict[str, User]) -> None:
    published = [a_photo(member, people, n) for n in range(3)]
    submitted = a_photo(member, people, 9, S.SUBMITTED)
    failed = a_photo(member, people, 10, S.FAILED)
    cora.post("/curate/shortlists", data={"name": "Brunch 2026"})
    shortlist = a_shortlist("Brunch 2026")

    response = cora.post("/curate/shortlists/add", data={
        "photo_ids": [str(published[0]), str(published[1])], "shortlist_id": str(shortlist.id), "next": "/photos"})
    assert response.status_code == 302 and response.headers["Location"] == "/photos"
    response = cora.post("/curate/shortlists/add", follow_redirects=True, data={
        "photo_ids": [str(i) for i in (published[1], published[2], submitted, failed, 999999)],
        "shortlist_id": str(shortlist.id), "next": f"/curate/shortlists/{shortlist.id}"})
    message = flashes(response)
    assert "Auswahlliste „Brunch 2026“: 2 Fotos hinzugefügt" in message
    assert "1 war schon darauf" in message and "1 ausgelassen (kein Bild möglich)" in message
    assert "1 gibt es nicht mehr" in message
    assert list_ids(shortlist.id) == sorted([*published, submitted])

    rows = {row.shortlist.name: row.photos for row in selection.list_shortlists(db.session)}
    assert rows == {"Brunch 2026": 4}
    page = cora.get(f"/curate/shortlists/{shortlist.id}").get_data(as_text=True)
    assert page.count('name="photo_ids"') == 4 and "4 Fotos, davon 3 veröffentlicht" in page
    assert "eingereicht, wartet auf Prüfung" in page, "a photo not yet publishable says so"

    response = cora.post(f"/curate/shortlists/{shortlist.id}/remove",
                         data={"photo_ids": [str(published[0]), str(submitted)]}, follow_redirects=True)
    assert "2 Fotos von „Brunch 2026“ genommen" in flashes(response)
    assert list_ids(shortlist.id) == sorted(published[1:])
    assert db.session.get(Photo, submitted) is not None, "the photo itself stays"
    assert cora.post(f"/curate/shortlists/{shortlist.id}/remove", data={}).status_code == 422

    events = db.session.scalars(select(AuditEvent).where(AuditEvent.subject == "shortlist")
                                .order_by(AuditEvent.id)).all()
    assert [(e.action, e.detail.get("photo_ids")) for e in events] == [
        ("shortlist.created", None),
        ("shortlist.photos_added", published[:2]),
        ("shortlist.photos_added", [published[2], submitted]),
        ("shortlist.photos_removed", [published[0], submitted]),
    ]
    assert all(e.subject_id == shortlist.id and e.actor_id == people["curator"].id for e in events)


def test_add_to_a_new_list_by_name_or_to_the_list_of_that_name(member: FlaskClient, cora: FlaskClient,
                                                               people: dict[str, User]) -> None:
    one, two = a_photo(member, people, 1), a_photo(member, people, 2)
    response = cora.post("/curate/shortlists/add", follow_redirects=True,
                         data={"photo_ids": str(one), "new_shortlist": "Rathaus-Schau", "next": f"/photos/{one}"})
    assert "Neue Auswahlliste „Rathaus-Schau“ angelegt: 1 Foto hinzugefügt" in flashes(response)
    shortlist = a_shortlist("Rathaus-Schau")
    # The same name typed again (other case) adds to that list instead of making a second one.
    cora.post("/curate/shortlists/add", data={"photo_ids": str(two), "new_shortlist": "rathaus-schau",
                                              "shortlist_id": "", "next": "/"})
    assert list_ids(shortlist.id) == sorted([one, two])
    assert db.session.scalar(select(func.count()).select_from(Shortlist)) == 1
    # Nothing selected, or no list: refused with the way back, and no list is made.
    response = cora.post("/curate/shortlists/add", data={"new_shortlist": "Leer", "next": f"/photos/{one}"})
    assert response.status_code == 422 and f'href="/photos/{one}"' in response.get_data(as_text=True)
    assert cora.post("/curate/shortlists/add", data={"photo_ids": str(one)}).status_code == 422
    assert cora.post("/curate/shortlists/add", data={"photo_ids": "abc", "new_shortlist": "X"}).status_code == 400
    assert cora.post("/curate/shortlists/add", data={"photo_ids": str(one),
                                                     "shortlist_id": "424242"}).status_code == 409
    assert db.session.scalar(select(func.count()).select_from(Shortlist)) == 1


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x",
                                    "photos"])
def test_next_only_goes_to_this_site(member: FlaskClient, cora: FlaskClient, people: dict[str, User],
                                     target: str) -> None:
    photo_id = a_photo(member, people, 1)
    response = cora.post("/curate/shortlists/add", data={"photo_ids": str(photo_id), "new_shortlist": "A",
                                                         "next": target})
    assert response.headers["Location"] == "/curate/shortlists"
    response = cora.post(f"/curate/photos/{photo_id}/rating", data={"stars": "3", "next": target})
    assert response.headers["Location"] == f"/photos/{photo_id}"


def test_delete_asks_first_and_keeps_the_photos(member: FlaskClient, cora: FlaskClient,
                                                people: dict[str, User]) -> None:
    photo_id = a_photo(member, people, 1)
    cora.post("/curate/shortlists/add", data={"photo_ids": str(photo_id), "new_shortlist": "Weg damit"})
    shortlist_id = a_shortlist("Weg damit").id
    response = cora.post(f"/curate/shortlists/{shortlist_id}/delete")
    assert response.status_code == 200 and "Ja, Liste löschen" in response.get_data(as_text=True)
    assert db.session.get(Shortlist, shortlist_id) is not None
    response = cora.post(f"/curate/shortlists/{shortlist_id}/delete", data={"confirm": "1"})
    assert response.status_code == 302 and response.headers["Location"] == "/curate/shortlists"
    db.session.expire_all()
    assert db.session.get(Shortlist, shortlist_id) is None
    assert db.session.scalar(select(func.count()).select_from(shortlist_photos)) == 0
    assert db.session.get(Photo, photo_id) is not None
    deleted = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "shortlist.deleted"))
    assert deleted.detail["before"] == {"name": "Weg damit", "photos": 1}
    assert cora.get(f"/curate/shortlists/{shortlist_id}").status_code == 404


def test_sorting_a_shortlist_by_rating(member: FlaskClient, cora: FlaskClient, people: dict[str, User]) -> None:
    low = a_photo(member, people, 1, title="Niedrig")
    high = a_photo(member, people, 2, title="Hoch")
    unrated = a_photo(member, people, 3, title="Ohne")
    cora.post("/curate/shortlists/add", data={"photo_ids": [str(unrated), str(low), str(high)],
                                              "new_shortlist": "Sortiert"})
    cora.post(f"/curate/photos/{low}/rating", data={"stars": "2"})
    cora.post(f"/curate/photos/{high}/rating", data={"stars": "5"})
    shortlist_id = a_shortlist("Sortiert").id

    def order(query: str) -> list[str]:
        html = cora.get(f"/curate/shortlists/{shortlist_id}{query}").get_data(as_text=True)
        return re.findall(r'<span class="caption">(\w+)</span>', html)

    assert order("") == ["Ohne", "Niedrig", "Hoch"]
    assert order("?sort=rating") == ["Hoch", "Niedrig", "Ohne"]


# --------------------------------------------------------------------------------------------------------------------
# Who may, and the forms on the other pages


def test_members_get_403_and_change_nothing(member: FlaskClient, cora: FlaskClient, people: dict[str, User]) -> None:
    photo_id = a_photo(member, people, 1)
    cora.post("/curate/shortlists/add", data={"photo_ids": str(photo_id), "new_shortlist": "Kandidaten"})
    shortlist_id = a_shortlist("Kandidaten").id
    for method, url, data in [
        ("get", "/curate/shortlists", None),
        ("get", f"/curate/shortlists/{shortlist_id}", None),
        ("post", "/curate/shortlists", {"name": "Meine"}),
        ("post", f"/curate/photos/{photo_id}/rating", {"stars": "5"}),
        ("post", "/curate/shortlists/add", {"photo_ids": str(photo_id), "new_shortlist": "Meine"}),
        ("post", f"/curate/shortlists/{shortlist_id}/remove", {"photo_ids": str(photo_id)}),
        ("post", f"/curate/shortlists/{shortlist_id}/rename", {"name": "Meine"}),
        ("post", f"/curate/shortlists/{shortlist_id}/delete", {"confirm": "1"}),
    ]:
        response = getattr(member, method)(url, data=data)
        assert response.status_code == 403, (method, url)
    db.session.expire_all()
    assert [s.name for s in db.session.scalars(select(Shortlist))] == ["Kandidaten"]
    assert list_ids(shortlist_id) == [photo_id]
    assert db.session.scalar(select(func.count()).select_from(Rating)) == 0
    page = member.get(f"/photos/{photo_id}").get_data(as_text=True)
    assert "Bewertung" not in page and "Auswahlliste" not in page
    grid = member.get("/photos").get_data(as_text=True)
    assert 'name="photo_ids"' not in grid and "selection.css" not in grid


def test_the_photo_page_offers_stars_and_the_lists(member: FlaskClient, cora: FlaskClient,
                                                   people: dict[str, User]) -> None:
    photo_id = a_photo(member, people, 1)
    cora.post("/curate/shortlists", data={"name": "Brunch 2026"})
    html = cora.get(f"/photos/{photo_id}").get_data(as_text=True)
    assert html.count('type="radio" name="stars"') == 6 and "<legend>Ihre Bewertung</legend>" in html
    assert f'action="/curate/photos/{photo_id}/rating"' in html
    assert '<option value="' in html and "Brunch 2026 (0)" in html and 'name="new_shortlist"' in html
    assert f'<input type="hidden" name="photo_ids" value="{photo_id}">' in html
    cora.post("/curate/shortlists/add", data={"photo_ids": str(photo_id), "shortlist_id":
                                              str(a_shortlist("Brunch 2026").id)})
    html = cora.get(f"/photos/{photo_id}").get_data(as_text=True)
    assert re.search(r'Auf der Auswahlliste\s*<a href="/curate/shortlists/\d+">Brunch 2026</a>', html)


def test_the_grid_and_the_queue_post_their_selection_to_a_shortlist(member: FlaskClient, cora: FlaskClient,
                                                                    people: dict[str, User]) -> None:
    published = a_photo(member, people, 1)
    waiting = a_photo(member, people, 2, S.SUBMITTED)
    grid = cora.get("/photos").get_data(as_text=True)
    assert f'name="photo_ids" value="{published}"' in grid and f'name="photo_ids" value="{waiting}"' in grid
    assert 'action="/curate/shortlists/add"' in grid and 'name="next" value="/photos"' in grid
    queue = cora.get("/curate").get_data(as_text=True)
    # One set of checkboxes, two destinations: the queue's bulk form and, by formaction, the shortlist.
    assert queue.count("<form ") == 3  # the logout button in the header, the filter and the bulk form
    assert 'formaction="/curate/shortlists/add"' in queue and f'value="{waiting}"' in queue
    response = cora.post("/curate/shortlists/add", data={"photo_ids": str(waiting), "new_shortlist": "Aus der Prüfung",
                                                         "reason": "", "tag_id": "", "next": "/curate"})
    assert response.headers["Location"] == "/curate"
    assert list_ids(a_shortlist("Aus der Prüfung").id) == [waiting]


def test_search_results_have_checkboxes_for_curators_only(app: Flask, client: FlaskClient, member: FlaskClient,
                                                          people: dict[str, User]) -> None:
    photo_id = a_photo(member, people, 1, title="Rheinbrücke im Nebel")
    get_jobs().outbox_changed()
    visitor = app.test_client()
    html = visitor.get("/search?q=Nebel").get_data(as_text=True)
    assert "Rheinbrücke im Nebel" in html
    assert 'name="photo_ids"' not in html and "selection" not in html and 'method="post"' not in html
    curator_html = as_user(app, "cora").get("/search?q=Nebel").get_data(as_text=True)
    assert f'<input type="checkbox" name="photo_ids" value="{photo_id}"' in curator_html
    assert 'action="/curate/shortlists/add"' in curator_html and "Auf Auswahlliste setzen" in curator_html
    assert 'name="next" value="/search?q=Nebel"' in curator_html
    # The member sees the hit too, without boxes.
    assert 'name="photo_ids"' not in member.get("/search?q=Nebel").get_data(as_text=True)
