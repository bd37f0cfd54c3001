"""The curators' pages in German (the default) and in English: headings, buttons and labels follow the language,
and no German text of the interface is left on an English page (the archive's own data may stay German).

Needs the English of these pages in archive/translations/en/LC_MESSAGES/messages.po (tools/translations.py fill)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import login

EN = {"Accept-Language": "en"}
DE = {"Accept-Language": "de"}

# page -> (German words that must be there in German, English words that must be there in English)
PAGES: dict[str, tuple[list[str], list[str]]] = {
    "/curate": (["Prüfliste", "Anzeigen", "alle Vereine", "Hier wartet gerade nichts."],
                ["Review queue", "Show", "all associations", "Nothing is waiting here right now."]),
    "/curate/places": (["Orte und Brücken", "Neuer Ort", "Ort anlegen", "Breitengrad (−90 bis 90)"],
                       ["Places and bridges", "New place", "Create place", "Latitude (−90 to 90)"]),
    "/curate/tags": (["Schlagwörter", "Neues Schlagwort", "In die Liste aufnehmen", "Keine freien Schlagwörter."],
                     ["Tags", "New tag", "Add to the list", "No free keywords."]),
    "/curate/audit": (["Protokoll", "Bereich", "alle Einträge", "Protokoll filtern"],
                      ["Audit log", "Area", "all entries", "Filter the audit log"]),
    "/curate/shortlists": (["Auswahllisten", "Neue Auswahlliste", "Anlegen"],
                           ["Shortlists", "New shortlist", "Create"]),
    "/curate/jury": (["Jury-Runden", "Neue Runde anlegen"], ["Jury rounds", "Create a new round"]),
    "/curate/jury/new": (["Neue Jury-Runde", "Woher kommen die Fotos?", "Runde anlegen", "Ludwigshafener Zeit"],
                         ["New jury round", "Where do the photos come from?", "Create round", "Ludwigshafen time"]),
    "/curate/exhibitions": (["Ausstellungen", "Neue Ausstellung", "Ausstellung anlegen", "Einführung"],
                            ["Exhibitions", "New exhibition", "Create exhibition", "Introduction"]),
    "/ausstellungen": (["Zurzeit ist keine Ausstellung veröffentlicht."],
                       ["No exhibition is published at the moment."]),
}

# Interface words that must not be left on an English page (checked in the text outside the archive's data).
GERMAN = ["Prüfliste", "Prüfung", "Fotos auswählen", "Speichern", "Abbrechen", "Anlegen", "Bearbeiten", "Ausstellung",
          "Auswahlliste", "Schlagwort", "Protokoll", "Verein", "Frist", "Runde", "Bewerten", "Entwurf",
          "veröffentlicht", "Noch keine", "bitte wählen", "Herunterladen", "erstellen", "Hinzufügen", "Zurück"]


def _text(html: str, keep_out: tuple[str, ...] = ()) -> str:
    """What people read: the page without scripts, tags and the archive's own data (names typed by people)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    # The photo statuses' own names come from archive/views/__init__.py (STATUS_LABELS), another area's texts.
    html = re.sub(r'<select id="filter-status".*?</select>', " ", html, flags=re.S)
    html = re.sub(r'\b(href|src|action|value|srcset|id|for|name|class|lang|hreflang|content|datetime)="[^"]*"', " ",
                  html)
    for data in keep_out:
        html = html.replace(data, " ")
    return html


@pytest.fixture
def curator(client: FlaskClient, people: dict[str, Any]) -> FlaskClient:
    login(client, "cora")
    return client


def _get(client: FlaskClient, path: str, headers: dict[str, str]) -> str:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


@pytest.mark.parametrize("path", list(PAGES))
def test_the_curators_pages_speak_german_and_english(curator: FlaskClient, path: str) -> None:
    german_words, english_words = PAGES[path]
    german = _get(curator, path, DE)
    assert '<html lang="de">' in german
    for word in german_words:
        assert word in german, (path, word)
    english = _get(curator, path, EN)
    assert '<html lang="en">' in english
    for word in english_words:
        assert word in english, (path, word)
    shown = _text(english)
    left = [word for word in GERMAN if re.search(rf"(?<![\w-]){re.escape(word)}", shown)]
    assert not left, f"{path}: German left on the English page: {left}"


def test_a_shortlist_and_an_exhibition_in_english(curator: FlaskClient) -> None:
    made = curator.post("/curate/shortlists", data={"name": "Kandidaten"}, headers=EN)
    assert made.status_code == 302
    shortlist = made.headers["Location"]
    page = _get(curator, shortlist, EN)
    assert "Nothing on this list yet." in page and "Edit list" in page and "Delete list" in page
    assert "0 photos" in page and "The shortlist “Kandidaten” has been created." in page
    assert not [w for w in GERMAN if re.search(rf"(?<![\w-]){w}", _text(page, ("Kandidaten",)))]
    german = _get(curator, shortlist, DE)
    assert "Auf dieser Liste ist noch nichts." in german and "0 Fotos" in german

    made = curator.post("/curate/exhibitions", headers=EN, data={
        "title": "Brückenschlag", "venue": "", "starts_on": "2026-05-12", "ends_on": "2026-06-30", "intro": ""})
    assert made.status_code == 302
    editor = made.headers["Location"]
    page = _get(curator, editor, EN)
    for words in ("Add photos", "Make print package (ZIP)", "Make catalogue in English (PDF)", "No exports yet.",
                  "Publish exhibition", "Draft", "Save details", "has been created. Now add photos."):
        assert words in page, words
    assert not [w for w in GERMAN if re.search(rf"(?<![\w-]){w}", _text(page, ("Brückenschlag",)))]
    german = _get(curator, editor, DE)
    assert "Fotos hinzufügen" in german and "Druckpaket (ZIP) erstellen" in german
    managed = _get(curator, "/curate/exhibitions", EN)
    assert "May 12 – Jun 30, 2026" in managed or "May 12 – June 30, 2026" in managed
    assert "12. Mai – 30. Juni 2026" in _get(curator, "/curate/exhibitions", DE)


def test_the_audit_log_reads_in_english(curator: FlaskClient) -> None:
    curator.post("/curate/tags", data={"name": "Rheinbrücke"})
    english = _get(curator, "/curate/audit", EN)
    assert "tag created" in english and "Tag “Rheinbrücke”" in english
    german = _get(curator, "/curate/audit", DE)
    assert "Schlagwort angelegt" in german and "Schlagwort „Rheinbrücke“" in german
