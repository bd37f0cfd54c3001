"""Exhibitions: the fields and their address, the sanitised introduction, adding photos (by number, from a
shortlist, from a jury round's selection), captions, the order (↑/↓ and the whole order at once), publishing, and
the public pages, which only ever show photos that are published at that moment."""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from archive import exhibitions, workflow
from archive.exhibitions import ExhibitionFields, date_range, render_intro, slugify
from archive.models import (
    AuditEvent,
    ConsentScope,
    Exhibition,
    ExhibitionItem,
    ExhibitionStatus,
    JuryMode,
    JuryPhoto,
    JuryRound,
    Licence,
    PeopleShown,
    Photo,
    PhotoStatus,
    Shortlist,
    User,
    db,
    shortlist_photos,
)
from tests.conftest import login
from tests.photos import complete_bundle, publish, upload_one

S = PhotoStatus
COLOURS = itertools.count(1)  # every upload a different image (the same bytes would be a duplicate)


# --------------------------------------------------------------------------------------------------------------------
# Helpers


def make_photos(client: FlaskClient, users: dict[str, User], titles: list[str], *,
                published: bool = True, **bundle: Any) -> list[int]:
    """Photos uploaded by the member, with a complete rights bundle, published by the curator."""
    login(client, "mia")
    ids = []
    for title in titles:
        n = next(COLOURS)
        photo_id = upload_one(client, (10 + n * 37 % 240, 60 + n * 13 % 190, 230 - n * 29 % 220))
        photo = complete_bundle(photo_id, users["member"], title=title, caption=f"Bildunterschrift von {title}",
                                **bundle)
        if photo.people == PeopleShown.CONSENT:
            workflow.record_consent(db.session, photo, users["member"], person="Lena K.",
                                    given_on=date.today() - timedelta(days=3), scopes={ConsentScope.WEB})
        if published:
            publish(photo_id, users["curator"])
        ids.append(photo_id)
    client.post("/logout")
    return ids


def make_exhibition(people: dict[str, User], photo_ids: list[int], title: str = "Partnerschaftsbrunch 2026",
                    **fields: str) -> Exhibition:
    exhibition = exhibitions.create_exhibition(db.session, people["curator"], ExhibitionFields(title=title, **fields))
    exhibitions.add_photo_ids(db.session, exhibition, photo_ids, people["curator"])
    return exhibition


def order_of(exhibition_id: int) -> list[int]:
    """The photo ids of an exhibition, in its order, as the database has it now."""
    return list(db.session.scalars(select(ExhibitionItem.photo_id).where(ExhibitionItem.exhibition_id == exhibition_id)
                                   .order_by(ExhibitionItem.position)))


def items_of(exhibition_id: int) -> list[ExhibitionItem]:
    return list(db.session.scalars(select(ExhibitionItem).where(ExhibitionItem.exhibition_id == exhibition_id)
                                   .order_by(ExhibitionItem.position).execution_options(populate_existing=True)))


def shown_titles(html: str) -> list[str]:
    """The photo titles on a public exhibition page, top to bottom."""
    return re.findall(r'<p class="ex-photo-title"><span class="ex-num">\d+</span> ([^<]+)</p>', html)


def audit_actions(exhibition_id: int) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.subject == "exhibition",
                                                                   AuditEvent.subject_id == exhibition_id)
                                   .order_by(AuditEvent.id)))


# --------------------------------------------------------------------------------------------------------------------
# Fields, address, dates


def test_the_address_spells_out_umlauts_and_stays_unique(people: dict[str, User]) -> None:
    assert slugify("Brücken über den Rhein – Straßenfest à Lorient") == \
        "bruecken-ueber-den-rhein-strassenfest-a-lorient"
    assert slugify("ÄÖÜ Größe") == "aeoeue-groesse"
    assert slugify("!!!") == "ausstellung"
    assert len(slugify("Brücke " * 40)) <= 72 and not slugify("Brücke " * 40).endswith("-")

    first = exhibitions.create_exhibition(db.session, people["curator"], ExhibitionFields(title="Brücken 2026"))
    second = exhibitions.create_exhibition(db.session, people["curator"], ExhibitionFields(title="Brücken  2026"))
    assert (first.slug, second.slug) == ("bruecken-2026", "bruecken-2026-2")
    assert second.title == "Brücken 2026"  # spaces tidied

    # The address follows the title until the first publication, then stays (shared links keep working).
    exhibitions.update_exhibition(db.session, second, people["curator"], ExhibitionFields(title="Rathaus-Schau"))
    assert second.slug == "rathaus-schau"
    second.published_at = second.created_at
    db.session.commit()
    exhibitions.update_exhibition(db.session, second, people["curator"], ExhibitionFields(title="Ganz anders"))
    assert second.slug == "rathaus-schau" and second.title == "Ganz anders"


def test_dates_are_checked_and_a_refusal_keeps_what_was_typed(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "cora")
    response = client.post("/curate/exhibitions", data={
        "title": "Rathaus", "venue": "Foyer", "starts_on": "2026-06-30", "ends_on": "2026-05-12"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Das Ende liegt vor dem Beginn" in page and 'value="Foyer"' in page and 'value="2026-06-30"' in page
    assert client.post("/curate/exhibitions", data={"title": "Rathaus", "starts_on": "12.05.2026"}).status_code == 422
    assert client.post("/curate/exhibitions", data={"title": "   "}).status_code == 422
    assert db.session.scalar(select(Exhibition.id)) is None  # nothing half-written

    response = client.post("/curate/exhibitions", data={
        "title": "Rathaus", "venue": "Foyer", "starts_on": "2026-05-12", "ends_on": "2026-05-12"})
    assert response.status_code == 302
    exhibition = db.session.scalar(select(Exhibition))
    assert response.headers["Location"].endswith(f"/curate/exhibitions/{exhibition.id}")
    assert (exhibition.starts_on, exhibition.ends_on) == (date(2026, 5, 12), date(2026, 5, 12))
    assert audit_actions(exhibition.id) == ["exhibition.created"]

    response = client.post(f"/curate/exhibitions/{exhibition.id}", data={
        "title": "Rathaus", "venue": "Foyer", "starts_on": "2026-05-12", "ends_on": "2026-05-01"})
    assert response.status_code == 422 and "Das Ende liegt vor dem Beginn" in response.get_data(as_text=True)
    db.session.refresh(exhibition)
    assert exhibition.ends_on == date(2026, 5, 12)
    assert client.post(f"/curate/exhibitions/{exhibition.id}", data={
        "title": "Rathaus", "venue": "Großer Saal", "starts_on": "2026-05-12", "ends_on": ""}).status_code == 302
    db.session.refresh(exhibition)
    assert exhibition.venue == "Großer Saal" and exhibition.ends_on is None
    changed = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "exhibition.changed")).one()
    assert changed.detail["before"] == {"venue": "Foyer", "ends_on": "2026-05-12"}
    assert changed.detail["after"] == {"venue": "Großer Saal", "ends_on": None}


def test_dates_read_as_people_say_them() -> None:
    assert date_range(date(2026, 5, 12), date(2026, 6, 30)) == "12. Mai – 30. Juni 2026"
    assert date_range(date(2025, 12, 1), date(2026, 1, 30)) == "1. Dezember 2025 – 30. Januar 2026"
    assert date_range(date(2026, 3, 1), None) == "ab 1. März 2026"
    assert date_range(None, date(2026, 3, 1)) == "bis 1. März 2026"
    assert date_range(date(2026, 3, 1), date(2026, 3, 1)) == "1. März 2026"
    assert date_range(None, None) == ""


# --------------------------------------------------------------------------------------------------------------------
# The introduction


def test_the_introduction_is_sanitised() -> None:
    html = str(render_intro(
        "# Über die Ausstellung\n\n"
        "Brücken *verbinden* **Städte**. <script>alert('x')</script>\n\n"
        "[Klick](javascript:alert(1)) <a href=\"JavaScript:alert(2)\">b</a> [rel](/ausstellungen) "
        "[Pfalzbau](https://www.pfalzbau.de/) [Mail](mailto:info@example.org)\n\n"
        "<img src=x onerror=\"alert(3)\"> <p onclick=\"alert(4)\" style=\"color:red\">Absatz</p>\n\n"
        "<iframe src=\"https://evil.example\"></iframe><style>body{display:none}</style>\n\n"
        "> Ein Zitat\n\n- eins\n- zwei\n\n1. erstens\n\n#### tief\n\nZeile  \numbrochen"))
    lowered = html.lower()
    for bad in ("<script", "alert(", "javascript:", "onerror", "onclick", "<img", "<iframe", "<style", "style=",
                "display:none", "<h1", "<h4", 'href="/ausstellungen"'):
        assert bad not in lowered, bad
    assert "<h2>Über die Ausstellung</h2>" in html and "<h3>tief</h3>" in html
    assert "<em>verbinden</em>" in html and "<strong>Städte</strong>" in html
    assert '<a href="https://www.pfalzbau.de/" rel="nofollow noopener">Pfalzbau</a>' in html
    assert '<a href="mailto:info@example.org" rel="nofollow noopener">Mail</a>' in html
    assert "<blockquote>" in html and "<ul>" in html and "<ol>" in html and "<br>" in html
    assert "<p>Absatz</p>" in html
    assert str(render_intro("   ")) == ""


def test_the_public_page_carries_only_the_sanitised_introduction(client: FlaskClient,
                                                                 people: dict[str, User]) -> None:
    ids = make_photos(client, people, ["Rheinbrücke"])
    exhibition = make_exhibition(people, ids, intro="Hallo <script>alert('x')</script>"
                                                    "<img src=x onerror=alert(1)> [a](javascript:alert(2))")
    exhibitions.publish(db.session, exhibition, people["curator"])
    page = client.get(f"/ausstellungen/{exhibition.slug}").get_data(as_text=True)
    assert "Hallo" in page
    assert "alert(" not in page and "onerror" not in page and "javascript:" not in page


# --------------------------------------------------------------------------------------------------------------------
# Who may


def test_members_get_403_and_visitors_the_login_page(client: FlaskClient, people: dict[str, User]) -> None:
    exhibition = exhibitions.create_exhibition(db.session, people["curator"], ExhibitionFields(title="Brunch"))
    urls = [f"/curate/exhibitions/{exhibition.id}", "/curate/exhibitions"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    login(client, "mia")
    for url in urls:
        assert client.get(url).status_code == 403
    assert client.post(f"/curate/exhibitions/{exhibition.id}/publish").status_code == 403
    assert client.post(f"/curate/exhibitions/{exhibition.id}", data={"title": "Gekapert"}).status_code == 403
    assert client.post(f"/curate/exhibitions/{exhibition.id}/order", json={"item_ids": []}).status_code == 403
    db.session.refresh(exhibition)
    assert exhibition.title == "Brunch" and exhibition.status == ExhibitionStatus.DRAFT
    assert client.get(f"/ausstellungen/{exhibition.slug}").status_code == 404  # a draft, for a member too


# --------------------------------------------------------------------------------------------------------------------
# Adding photos


def test_adding_by_number_from_a_shortlist_and_from_a_jury_round(client: FlaskClient,
                                                                 people: dict[str, User]) -> None:
    a, b, c, d, e = make_photos(client, people, ["A", "B", "C", "D", "E"])
    rejected, = make_photos(client, people, ["Abgelehnt"], published=False)
    workflow.transition(db.session, db.session.get(Photo, rejected), "reject", people["curator"], "unscharf")
    exhibition = exhibitions.create_exhibition(db.session, people["curator"], ExhibitionFields(title="Brunch"))
    login(client, "cora")

    response = client.post(f"/curate/exhibitions/{exhibition.id}/photos",
                           data={"source": "ids", "photo_ids": f"{c}, {a} #{c}; 99999 {rejected}"})
    assert response.status_code == 302
    assert order_of(exhibition.id) == [c, a]
    flashed = client.get(f"/curate/exhibitions/{exhibition.id}").get_data(as_text=True)
    assert "2 Fotos hinzugefügt" in flashed and "wurde abgelehnt" in flashed and "99999" in flashed

    shortlist = Shortlist(name="Brunch – Kandidaten")
    db.session.add(shortlist)
    db.session.flush()
    db.session.execute(shortlist_photos.insert(), [
        {"shortlist_id": shortlist.id, "photo_id": photo_id, "added_at": datetime(2026, 1, 1, 12, n)}
        for n, photo_id in enumerate((b, a, d))])
    db.session.commit()
    assert client.post(f"/curate/exhibitions/{exhibition.id}/photos",
                       data={"source": "shortlist", "shortlist_id": shortlist.id}).status_code == 302
    assert order_of(exhibition.id) == [c, a, b, d]  # a was there already and stays where it was

    jury = JuryRound(name="Runde 1", mode=JuryMode.YES_NO, exhibition_id=exhibition.id)
    db.session.add(jury)
    db.session.flush()
    for position, (photo_id, selected) in enumerate([(e, True), (b, True), (d, False)], start=1):
        db.session.add(JuryPhoto(round_id=jury.id, photo_id=photo_id, position=position, selected=selected))
    open_round = JuryRound(name="Noch offen", mode=JuryMode.STARS)
    db.session.add(open_round)
    db.session.flush()
    db.session.add(JuryPhoto(round_id=open_round.id, photo_id=a, position=1, selected=None))
    db.session.commit()
    editor = client.get(f"/curate/exhibitions/{exhibition.id}").get_data(as_text=True)
    assert "Runde 1 (2 ausgewählt, für diese Ausstellung)" in editor and "Noch offen" not in editor
    assert client.post(f"/curate/exhibitions/{exhibition.id}/photos",
                       data={"source": "round", "round_id": jury.id}).status_code == 302
    assert order_of(exhibition.id) == [c, a, b, d, e]  # only the selected ones; b was there already

    response = client.post(f"/curate/exhibitions/{exhibition.id}/photos",
                           data={"source": "round", "round_id": open_round.id})
    assert response.status_code == 409 and "keine Fotos ausgewählt" in response.get_data(as_text=True)
    assert client.post(f"/curate/exhibitions/{exhibition.id}/photos",
                       data={"source": "ids", "photo_ids": "zwölf"}).status_code == 422
    assert client.post(f"/curate/exhibitions/{exhibition.id}/photos",
                       data={"source": "ids", "photo_ids": ""}).status_code == 422
    assert client.post(f"/curate/exhibitions/{exhibition.id}/photos",
                       data={"source": "shortlist", "shortlist_id": "0"}).status_code == 422
    assert order_of(exhibition.id) == [c, a, b, d, e]
    added = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "exhibition.changed")).all()
    assert [event.detail["added"] for event in added] == [[c, a], [b, d], [e]]
    assert added[1].detail["source"] == "Auswahlliste „Brunch – Kandidaten“"


# --------------------------------------------------------------------------------------------------------------------
# Order and captions


def test_reordering_with_the_buttons(client: FlaskClient, people: dict[str, User]) -> None:
    a, b, c = make_photos(client, people, ["Erstes", "Zweites", "Drittes"])
    exhibition = make_exhibition(people, [a, b, c])
    item_a, _item_b, item_c = items_of(exhibition.id)
    login(client, "cora")
    url = f"/curate/exhibitions/{exhibition.id}/items"

    response = client.post(f"{url}/{item_a.id}/move", data={"direction": "down"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"#item-{item_a.id}")
    assert order_of(exhibition.id) == [b, a, c]
    assert "„Erstes“ ist jetzt an Position 2 von 3." in client.get(response.headers["Location"]).get_data(as_text=True)
    client.post(f"{url}/{item_c.id}/move", data={"direction": "up"})
    client.post(f"{url}/{item_c.id}/move", data={"direction": "up"})
    assert order_of(exhibition.id) == [c, b, a]
    # At either end nothing moves, and the page says so.
    response = client.post(f"{url}/{item_c.id}/move", data={"direction": "up"}, follow_redirects=True)
    assert "steht schon an erster Stelle" in response.get_data(as_text=True)
    client.post(f"{url}/{item_a.id}/move", data={"direction": "down"})
    assert order_of(exhibition.id) == [c, b, a]
    assert [i.position for i in items_of(exhibition.id)] == [1, 2, 3]

    assert client.post(f"{url}/{item_a.id}/move", data={"direction": "sideways"}).status_code == 400
    assert client.post(f"{url}/999999/move", data={"direction": "up"}).status_code == 404
    other = exhibitions.create_exhibition(db.session, people["curator"], ExhibitionFields(title="Andere"))
    assert client.post(f"/curate/exhibitions/{other.id}/items/{item_a.id}/move",
                       data={"direction": "up"}).status_code == 404  # an item of another exhibition
    moves = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "exhibition.changed",
                                                        AuditEvent.subject_id == exhibition.id)).all()
    assert moves[-1].detail["after"] == {"order": [c, b, a]}

    # The editor shows the ↑/↓ buttons as plain forms (they work without the script), the ends marked.
    page = client.get(f"/curate/exhibitions/{exhibition.id}").get_data(as_text=True)
    assert page.count('name="direction" value="up"') == 3 and page.count('aria-disabled="true"') == 2
    assert 'src="/static/exhibitions.js"' in page and 'aria-live="polite"' in page


def test_the_whole_order_at_once(client: FlaskClient, people: dict[str, User]) -> None:
    a, b, c, d = make_photos(client, people, ["A", "B", "C", "D"])
    exhibition = make_exhibition(people, [a, b, c, d])
    ia, ib, ic, id_ = (item.id for item in items_of(exhibition.id))
    login(client, "cora")
    url = f"/curate/exhibitions/{exhibition.id}/order"

    response = client.post(url, json={"item_ids": [id_, ia, ic, ib]}, headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.get_json()["order"] == [id_, ia, ic, ib]
    assert order_of(exhibition.id) == [d, a, c, b]

    # Without the script: form fields, then back to the editor.
    response = client.post(url, data={"item_ids": [str(ia), str(ib), str(ic), str(id_)]})
    assert response.status_code == 302
    assert order_of(exhibition.id) == [a, b, c, d]

    # A list that is not exactly the exhibition's items (someone changed it meanwhile) changes nothing.
    for wrong in ([ia, ib, ic], [ia, ib, ic, id_, id_], [ia, ib, ic, 999999], [ia, ia, ib, ic]):
        response = client.post(url, json={"item_ids": wrong}, headers={"Accept": "application/json"})
        assert response.status_code == 409, wrong
        assert "Bitte laden Sie die Seite neu" in response.get_json()["error"]["de"]
    assert client.post(url, json={"item_ids": ["a", "b"]}).status_code == 400
    assert client.post(url, json={"nothing": 1}).status_code == 400
    assert order_of(exhibition.id) == [a, b, c, d]


def test_captions_of_the_exhibition(client: FlaskClient, people: dict[str, User]) -> None:
    a, = make_photos(client, people, ["Rheinbrücke"])
    exhibition = make_exhibition(people, [a])
    item = items_of(exhibition.id)[0]
    login(client, "cora")
    url = f"/curate/exhibitions/{exhibition.id}/items/{item.id}/caption"
    assert client.post(url, data={"caption": "  Beim Brunch 2026 an der Stirnwand  "}).status_code == 302
    db.session.refresh(item)
    assert item.caption == "Beim Brunch 2026 an der Stirnwand"
    assert client.post(url, data={"caption": "x" * 2001}).status_code == 422
    db.session.refresh(item)
    assert item.caption == "Beim Brunch 2026 an der Stirnwand"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "exhibition.changed")
                               .order_by(AuditEvent.id.desc())).first()
    assert event.photo_id == a and event.detail["after"] == {"caption": "Beim Brunch 2026 an der Stirnwand"}

    assert client.post(f"/curate/exhibitions/{exhibition.id}/items/{item.id}/remove").status_code == 302
    assert order_of(exhibition.id) == [] and db.session.get(Photo, a) is not None


# --------------------------------------------------------------------------------------------------------------------
# Publishing and the public pages


def test_the_public_page_shows_published_photos_in_order_with_captions_and_credits(
        client: FlaskClient, people: dict[str, User]) -> None:
    a, b, c = make_photos(client, people, ["Kaiser-Wilhelm-Brücke", "Pont du Bonhomme", "Tower Bridge"])
    d, = make_photos(client, people, ["Noch in Prüfung"], published=False)
    e, = make_photos(client, people, ["Nur fürs Projekt"], credit="Jonas Beispiel", licence=Licence.PROJECT_ONLY)
    exhibition = make_exhibition(people, [a, b, c, d, e], venue="Pfalzbau Ludwigshafen", starts_on="2026-05-12",
                                 ends_on="2026-06-30", intro="Brücken **verbinden**.")
    ia, ib, ic, id_, ie = (item.id for item in items_of(exhibition.id))
    exhibitions.set_order(db.session, exhibition, [ic, ia, id_, ie, ib], people["curator"])
    exhibitions.set_caption(db.session, exhibition, ia, "Die eigene Unterschrift der Ausstellung", people["curator"])

    assert client.get(f"/ausstellungen/{exhibition.slug}").status_code == 404  # still a draft
    assert exhibition.title not in client.get("/ausstellungen").get_data(as_text=True)
    exhibitions.publish(db.session, exhibition, people["curator"])
    assert audit_actions(exhibition.id)[-1] == "exhibition.published"

    response = client.get(f"/ausstellungen/{exhibition.slug}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert shown_titles(page) == ["Tower Bridge", "Kaiser-Wilhelm-Brücke", "Nur fürs Projekt", "Pont du Bonhomme"]
    assert "Noch in Prüfung" not in page and f"/media/{d}/" not in page
    assert "12. Mai – 30. Juni 2026" in page and "Pfalzbau Ludwigshafen" in page
    assert "<strong>verbinden</strong>" in page
    assert "Die eigene Unterschrift der Ausstellung" in page
    assert "Bildunterschrift von Kaiser-Wilhelm-Brücke" not in page  # replaced by the exhibition's caption
    assert "Bildunterschrift von Tower Bridge" in page  # the photo's own caption otherwise
    assert page.count("Foto: Anna Beispiel · CC BY 4.0") == 3
    assert "Foto: Jonas Beispiel · Nutzung nur für Fotoprojekt Brücken" in page
    assert page.count('href="https://creativecommons.org/licenses/by/4.0/" rel="license"') == 3
    assert "Freundeskreis" in page  # the association
    previews = re.findall(r'src="/media/(\d+)/preview\.jpg"', page)
    assert previews == [str(c), str(a), str(e), str(b)]
    assert "Entwurf" not in page and "nicht veröffentlicht" not in page  # visitors see no curators' notes
    for photo_id in previews:
        assert client.get(f"/media/{photo_id}/preview.jpg").status_code == 200

    listing = client.get("/ausstellungen").get_data(as_text=True)
    assert f'href="/ausstellungen/{exhibition.slug}"' in listing and "4 Fotos" in listing
    assert "12. Mai – 30. Juni 2026" in listing and "Pfalzbau Ludwigshafen" in listing
    # The gallery's navigation leads here.
    assert 'href="/ausstellungen"' in client.get("/").get_data(as_text=True)


def test_unpublishing_a_photo_removes_it_from_every_exhibition_at_once(client: FlaskClient,
                                                                     people: dict[str, User]) -> None:
    a, b = make_photos(client, people, ["Bleibt", "Geht"])
    c, = make_photos(client, people, ["Mit Einwilligung"], people=PeopleShown.CONSENT)
    photo_c = db.session.get(Photo, c)
    consent = photo_c.consents[0]
    first = make_exhibition(people, [a, b, c], title="Brunch")
    second = make_exhibition(people, [b, c, a], title="Rathaus")
    for exhibition in (first, second):
        exhibitions.publish(db.session, exhibition, people["curator"])
        assert shown_titles(client.get(f"/ausstellungen/{exhibition.slug}").get_data(as_text=True)) != []

    login(client, "cora")
    assert client.post(f"/photos/{b}/status", data={"action": "withdraw", "reason": "Urheberrecht unklar"}
                       ).status_code == 302
    client.post("/logout")
    assert shown_titles(client.get("/ausstellungen/brunch").get_data(as_text=True)) == ["Bleibt", "Mit Einwilligung"]
    assert shown_titles(client.get("/ausstellungen/rathaus").get_data(as_text=True)) == ["Mit Einwilligung", "Bleibt"]

    # A consent withdrawn: the archive withdraws the photo, and it is gone from the pages with the next request.
    workflow.withdraw_consent(db.session, photo_c, consent, people["member"], "Frau K. möchte nicht mehr")
    assert shown_titles(client.get("/ausstellungen/brunch").get_data(as_text=True)) == ["Bleibt"]
    assert shown_titles(client.get("/ausstellungen/rathaus").get_data(as_text=True)) == ["Bleibt"]
    assert client.get("/ausstellungen").get_data(as_text=True).count("1 Foto<") == 2
    assert client.get(f"/media/{c}/preview.jpg").status_code == 404

    # The curators still see the items, marked with the reason; the items themselves stay.
    login(client, "cora")
    editor = client.get(f"/curate/exhibitions/{first.id}").get_data(as_text=True)
    assert editor.count("<strong>nicht öffentlich</strong>") == 2
    assert "zurückgezogen – Urheberrecht unklar" in editor
    assert "zurückgezogen – Einwilligung widerrufen" in editor
    assert "2 Fotos sind nicht öffentlich" in editor
    assert order_of(first.id) == [a, b, c]
    page = client.get("/ausstellungen/brunch").get_data(as_text=True)
    assert "2 Fotos dieser Ausstellung sind nicht veröffentlicht" in page and shown_titles(page) == ["Bleibt"]

    # Published again: back on the page, in its place.
    workflow.transition(db.session, db.session.get(Photo, b), "reconsider", people["curator"])
    publish(b, people["curator"])
    client.post("/logout")
    assert shown_titles(client.get("/ausstellungen/brunch").get_data(as_text=True)) == ["Bleibt", "Geht"]


def test_drafts_are_404_for_visitors_and_shown_to_curators_with_a_banner(client: FlaskClient,
                                                                         people: dict[str, User]) -> None:
    a, = make_photos(client, people, ["Rheinbrücke"])
    exhibition = make_exhibition(people, [a], title="Geheimer Entwurf")
    assert client.get("/ausstellungen/geheimer-entwurf").status_code == 404
    assert "Geheimer Entwurf" not in client.get("/ausstellungen").get_data(as_text=True)
    assert client.get("/ausstellungen/gibt-es-nicht").status_code == 404
    login(client, "cora")
    page = client.get("/ausstellungen/geheimer-entwurf")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<strong>Entwurf</strong>" in html and shown_titles(html) == ["Rheinbrücke"]
    assert 'name="robots" content="noindex"' in html

    # Published, then taken back: gone again for visitors at once; the address stays.
    assert client.post(f"/curate/exhibitions/{exhibition.id}/publish").status_code == 302
    client.post("/logout")
    assert client.get("/ausstellungen/geheimer-entwurf").status_code == 200
    login(client, "cora")
    assert client.post(f"/curate/exhibitions/{exhibition.id}/unpublish").status_code == 302
    client.post("/logout")
    assert client.get("/ausstellungen/geheimer-entwurf").status_code == 404
    assert audit_actions(exhibition.id)[-2:] == ["exhibition.published", "exhibition.unpublished"]


def test_an_exhibition_without_public_photos_is_not_published(client: FlaskClient, people: dict[str, User]) -> None:
    d, = make_photos(client, people, ["Noch in Prüfung"], published=False)
    exhibition = make_exhibition(people, [d])
    login(client, "cora")
    response = client.post(f"/curate/exhibitions/{exhibition.id}/publish")
    assert response.status_code == 409
    assert "noch kein veröffentlichtes Foto" in response.get_data(as_text=True)
    db.session.refresh(exhibition)
    assert exhibition.status == ExhibitionStatus.DRAFT and exhibition.published_at is None
    assert "exhibition.published" not in audit_actions(exhibition.id)


def test_the_public_list_is_newest_first(client: FlaskClient, people: dict[str, User]) -> None:
    a, = make_photos(client, people, ["Rheinbrücke"])
    for title, starts in (("Brunch 2024", "2024-05-01"), ("Brunch 2026", "2026-05-01"), ("Brunch 2025", "2025-05-01")):
        exhibitions.publish(db.session, make_exhibition(people, [a], title=title, starts_on=starts),
                            people["curator"])
    listing = client.get("/ausstellungen").get_data(as_text=True)
    positions = [listing.index(title) for title in ("Brunch 2026", "Brunch 2025", "Brunch 2024")]
    assert positions == sorted(positions)
    assert listing.count(f'src="/media/{a}/thumb.jpg"') == 3  # the cover: the first public photo


@pytest.mark.parametrize("lang", ["de", "en"])
def test_refusals_come_in_both_languages(client: FlaskClient, people: dict[str, User], lang: str) -> None:
    login(client, "cora")
    response = client.post("/curate/exhibitions", data={"title": ""}, headers={"Accept-Language": lang})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    first = "Bitte geben Sie der Ausstellung einen Titel." if lang == "de" else "Please give the exhibition a title."
    assert f'<p class="flash error">{first}</p>' in text
    assert '<p lang="en" class="secondary">Please give the exhibition a title.</p>' in text or lang == "en"


def test_a_double_click_on_add_does_not_fail(client: FlaskClient, people: dict[str, User]) -> None:
    from sqlalchemy.orm import Session

    photo_ids = make_photos(client, people, ["Brücke am Abend"])
    exhibition = exhibitions.create_exhibition(db.session, people["curator"], ExhibitionFields(title="Doppelklick"))
    photo = db.session.get(Photo, photo_ids[0])
    assert exhibition.items == []  # this request has loaded the empty exhibition ...
    with Session(db.engine) as other:  # ... when the first click's request adds the photo and commits
        exhibitions.add_photos(other, other.get(Exhibition, exhibition.id), [other.get(Photo, photo_ids[0])],
                               other.get(User, people["curator"].id))
    outcome = exhibitions.add_photos(db.session, exhibition, [photo], people["curator"])
    assert outcome.added == [] and [p.id for p in outcome.already] == photo_ids
    assert [item.photo_id for item in db.session.get(Exhibition, exhibition.id).items] == photo_ids
