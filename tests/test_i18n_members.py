"""The members' and admins' pages in German and English: log in, password, invitation, account, the admin pages,
the photo grid and edit page, search. German is the default; an English browser gets English texts and dates."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from archive.models import Association, User, db
from tests.conftest import login
from tests.photos import upload_one

EN = {"Accept-Language": "en-GB,en;q=0.9"}
DE = {"Accept-Language": "de-DE,de;q=0.9"}
GERMAN_DATE = re.compile(r"\b\d{2}\.\d{2}\.\d{4}\b")
ENGLISH_DATE = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}\b")


def both(client: FlaskClient, path: str) -> tuple[str, str]:
    german = client.get(path, headers=DE)
    english = client.get(path, headers=EN)
    assert german.status_code == english.status_code == 200, (path, german.status_code, english.status_code)
    return german.get_data(as_text=True), english.get_data(as_text=True)


def check(german: str, english: str, pairs: list[tuple[str, str]]) -> None:
    """Each (German, English): the German page has the German text and not the English, and the other way round."""
    for de, en in pairs:
        assert de in german, de
        assert en in english, en
        assert de not in english, f"German left on the English page: {de!r}"


def test_login_page(client: FlaskClient) -> None:
    german, english = both(client, "/login")
    check(german, english, [(">Anmelden</h1>", ">Log in</h1>"), (">Benutzername<", ">Username<"),
                            (">Passwort<", ">Password<"), ("Passwort vergessen?", "Forgot your password?")])


def test_password_page(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    german, english = both(client, "/password")
    check(german, english, [("Neues Passwort</h1>", "New password</h1>"), ("Bisheriges Passwort", "Current password"),
                            (">Noch einmal<", ">Repeat<"), (">Speichern<", ">Save<")])
    wrong = client.post("/password", headers=EN, data={"current": "nope", "password": "a new password 1",
                                                       "confirm": "a new password 1"})
    assert wrong.status_code == 422 and "The current password is wrong." in wrong.get_data(as_text=True)
    mismatch = client.post("/password", headers=EN, data={"current": "x", "password": "a new password 1",
                                                          "confirm": "another one 22"})
    assert mismatch.status_code == 422 and "The passwords do not match." in mismatch.get_data(as_text=True)


def test_account_page_and_its_dates(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    client.post("/account/tokens", data={"name": "Laptop"})
    german, english = both(client, "/account")
    check(german, english, [("Mein Konto</h1>", "My account</h1>"), ("Angemeldet auf", "Logged in on"),
                            ("API-Schlüssel</h2>", "API tokens</h2>"), ("Schlüssel anlegen", "Create token"),
                            ("Zuletzt benutzt", "Last used"), (">Mitglied<", ">Member<"),
                            ("Auf allen anderen Geräten abmelden", "Log out on all other devices")])
    assert GERMAN_DATE.search(german) and not ENGLISH_DATE.search(german)
    assert ENGLISH_DATE.search(english) and not GERMAN_DATE.search(english)
    flashed = client.post("/account/name", data={"display_name": "Mia M."}, headers=EN, follow_redirects=True)
    assert "Your name was saved." in flashed.get_data(as_text=True)
    assert "gespeichert" not in flashed.get_data(as_text=True)


def test_admin_overview_and_person(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "ada")
    german, english = both(client, "/admin")
    check(german, english, [("Verwaltung</h1>", "Administration</h1>"), ("Jemanden einladen", "Invite someone"),
                            ("Offene Links", "Open links"), ("Einladungslink erzeugen", "Create invitation link"),
                            (">Kurator:in<", ">Curator<"), ("4 Konten", "4 accounts"),
                            ("Neuer Verein", "New association"), ("Partnerstadt", "Partner city")])
    german, english = both(client, f"/admin/users/{people['member'].id}")
    check(german, english, [("Konto mia", "Account mia"), ("Rolle, Verein, Zugang", "Role, association, access"),
                            ("Passwort-Link erzeugen", "Create password link"), ("Verlauf</h2>", "History</h2>"),
                            ("Alle Sitzungen beenden", "End all sessions"), ("Keine API-Schlüssel.", "No API tokens.")])
    assert GERMAN_DATE.search(german) and ENGLISH_DATE.search(english) and not GERMAN_DATE.search(english)
    german, english = both(client, "/admin/associations/new")
    check(german, english, [("Name des Vereins", "Name of the association"), (">Land<", ">Country<")])


def test_invitation_link_and_page(client: FlaskClient, app: Flask, people: dict[str, User]) -> None:
    login(client, "ada")
    ident = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    made = client.post("/admin/invitations", data={"role": "member", "association_id": str(ident)}, headers=EN)
    page = made.get_data(as_text=True)
    assert made.status_code == 201 and "Invitation link</h1>" in page and "Copy the link now" in page
    assert "Kopieren Sie" not in page and ENGLISH_DATE.search(page) and not GERMAN_DATE.search(page)
    token = re.search(r'/invite/([^"]+)"', page).group(1)  # type: ignore[union-attr]
    newcomer = app.test_client()
    german, english = both(newcomer, f"/invite/{token}")
    check(german, english, [("Willkommen bei Brücken", "Welcome to Brücken"), ("Konto einrichten", "Set up account"),
                            ("Sie sind eingeladen als <strong>Mitglied</strong>",
                             "You are invited as <strong>Member</strong>"),
                            ("Passwort noch einmal", "Repeat password")])
    assert GERMAN_DATE.search(german) and ENGLISH_DATE.search(english) and not GERMAN_DATE.search(english)


@pytest.fixture
def photo_id(client: FlaskClient, people: dict[str, User]) -> int:
    login(client, "mia")
    ident = upload_one(client)
    client.post(f"/photos/{ident}/consents", data={"person": "Jonas P.", "given_on": "2024-05-01", "scope_web": "1"})
    return ident


def test_grid_and_edit_page(client: FlaskClient, photo_id: int) -> None:
    german, english = both(client, "/photos")
    check(german, english, [("1 Foto<", "1 photo<")])
    german, english = both(client, f"/photos/{photo_id}/edit")
    check(german, english, [("Angaben zum Foto", "About the photo"), ("Texte (Deutsch)", "Texts (German)"),
                            ("Einwilligungen der gezeigten Personen", "Consent of the people shown"),
                            ("Sind Minderjährige zu sehen?", "Are minors shown?"), (">Speichern<", ">Save<"),
                            ("Für die Veröffentlichung fehlt noch:", "Still missing before publication:"),
                            ("ein Titel (Deutsch)", "a title (German)"),
                            ("keine erkennbaren Personen", "no identifiable people"),
                            ("Widerruf eintragen", "Record withdrawal"), ("Französisch", "French")])
    assert "01.05.2024" in german and "May 1, 2024" in english and "01.05.2024" not in english


def test_search_page(client: FlaskClient, photo_id: int) -> None:
    german, english = both(client, "/search?q=Rhein")
    check(german, english, [("Suche</h1>", "Search</h1>"), ("Sortierung", "Sort by"), ("Relevanz", "Relevance"),
                            ("Suchhilfe", "Search help"), ("Alle Wörter müssen vorkommen", "All words must appear")])
    assert re.search(r"\d+ Treffer", german) and re.search(r"\d+ results?\b", english)


def test_numbers_and_labels_follow_the_language(app: Flask) -> None:
    from archive.views import decimal, status_label

    # Each in an app context of its own: Flask-Babel keeps the chosen locale for the context's lifetime.
    with app.app_context(), app.test_request_context("/", headers=DE):
        assert decimal(4.9) == "4,9" and decimal(8.0) == "8" and status_label("in_review") == "in Prüfung"
    with app.app_context(), app.test_request_context("/", headers=EN):
        assert decimal(4.9) == "4.9" and decimal(8.0) == "8" and status_label("in_review") == "in review"
        assert status_label("in_review", "de") == "in Prüfung"  # the German half of a refusal stays German


def test_lazy_labels_are_never_stored(client: FlaskClient, people: dict[str, Any]) -> None:
    """Changing a role writes the role's code to the audit log, not a label."""
    login(client, "ada")
    member = people["member"]
    client.post(f"/admin/users/{member.id}", headers=EN, data={
        "role": "curator", "association_id": "", "active": "1", "display_name": "Mia"})
    from archive.models import AuditEvent

    db.session.expire_all()
    stored = [event.detail for event in db.session.scalars(select(AuditEvent))]
    assert stored and all("Curator" not in repr(detail) and "Kurator" not in repr(detail) for detail in stored)
