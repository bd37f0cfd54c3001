"""German first, English second: the language follows the switch, then the browser; the catalogue is complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_german_is_the_default_and_the_browser_can_ask_for_english(client):
    german = client.get("/").get_data(as_text=True)
    assert '<html lang="de">' in german and "Zum Inhalt springen" in german
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in english and "Skip to content" in english and "Zum Inhalt springen" not in english
    french = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).get_data(as_text=True)
    assert '<html lang="de">' in french


def test_the_switch_remembers_and_goes_back_to_the_same_page(client):
    response = client.get("/sprache/en?next=/suche?q=Br%C3%BCcke", headers={"Accept-Language": "de"})
    assert response.status_code == 303 and response.headers["Location"] == "/suche?q=Br%C3%BCcke"
    page = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="en">' in page and 'hreflang="de"' in page
    client.get("/sprache/de")
    assert '<html lang="de">' in client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)


def test_the_switch_never_sends_people_to_another_site(client):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", ""):
        response = client.get("/sprache/en", query_string={"next": target})
        assert response.headers["Location"] == "/", target
    assert client.get("/sprache/xx?next=/suche").headers["Location"] == "/suche"


def test_every_text_has_its_english_translation(tmp_path):
    """Extracts the texts from code and templates afresh: a new German text without English fails here."""
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg",
                    "-k", "lazy_gettext", "-k", "_l", "-o", str(pot), "."], check=True, cwd=ROOT)
    from babel.messages import pofile

    with pot.open("rb") as handle:
        wanted = {message.id for message in pofile.read_po(handle) if message.id}
    with (ROOT / "archive/translations/en/LC_MESSAGES/messages.po").open("rb") as handle:
        english = {message.id: message for message in pofile.read_po(handle, locale="en") if message.id}
    untranslated = sorted(str(german) for german in wanted
                          if german not in english or english[german].fuzzy or not english[german].string
                          or (isinstance(english[german].string, tuple) and not all(english[german].string)))
    assert not untranslated, f"without English (run tools/translations.py extract, then fill): {untranslated}"
    assert len(wanted) > 10


def test_placeholders_survive_translation():
    import re

    from babel.messages import pofile

    with (ROOT / "archive/translations/en/LC_MESSAGES/messages.po").open("rb") as handle:
        catalogue = pofile.read_po(handle, locale="en")
    named = re.compile(r"%\((\w+)\)[sd]")
    for message in catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(named.findall(ids[-1]))
        for text in strings:
            assert set(named.findall(text)) <= wanted | set(named.findall(ids[0])), (message.id, text)
            assert set(named.findall(text)) >= set(named.findall(ids[0])) - {"num"}, (message.id, text)
