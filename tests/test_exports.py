"""Exports of an exhibition: the print shop's ZIP, the PDF catalogue and the contact sheet, made by the (here
immediate) job queue, opened and read back: ZIP entries, credits, README, PDF pages and text, QR links, and every
PDF page rendered with pdftoppm into test-artifacts/exports/ to be looked at."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy import select

from archive import exports, workflow
from archive.models import (
    AuditEvent,
    ConsentScope,
    Exhibition,
    ExhibitionItem,
    Export,
    ExportStatus,
    PeopleShown,
    Photo,
    PhotoStatus,
    User,
    db,
)
from archive.services import get_store
from tests.conftest import jpeg_bytes, login
from tests.photos import complete_bundle, publish, upload_one

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "exports"

INTRO = """Die **Brücken** unserer Partnerstädte, von Ludwigshafen bis Pasadena.

- Konrad-Adenauer-Brücke
- Pont du Bonhomme in Lorient

Eintritt frei. <script>alert(1)</script>"""

# (colour, title, caption, people, consent scopes, publish?)
PHOTOS: list[dict[str, Any]] = [
    dict(color=(200, 30, 30), title="Brücke über den Rhein", caption="Abendlicht über der Konrad-Adenauer-Brücke",
         credit="Anna Beispiel"),
    dict(color=(30, 160, 60), title="Pont du Bonhomme", caption="Morgennebel am Blavet", credit="Lucie Martin",
         translations={"en": ("Bonhomme bridge", "Morning mist on the Blavet", "A bridge in fog")}),
    # identifiable people, consent for the web only: published, but not printable
    dict(color=(40, 40, 190), title="Brückenfest", caption="Tanz auf der Brücke", credit="Omar Yılmaz",
         people=PeopleShown.CONSENT, scopes={ConsentScope.WEB}),
    # identifiable people, consent covering print
    dict(color=(190, 190, 40), title="Schüler:innen auf dem Steg", caption="Projekttag", credit="Jens Krämer",
         people=PeopleShown.CONSENT, scopes={ConsentScope.WEB, ConsentScope.PRINT}),
    # still in review: never printed, but on the contact sheet (marked)
    dict(color=(120, 20, 120), title="Neue Fußgängerbrücke", caption="Baustelle", credit="Anna Beispiel",
         publish=False),
]


def _make_photos(client: FlaskClient, people: dict[str, Any]) -> list[int]:
    login(client, "mia")
    curator = people["curator"]
    ids = []
    for spec in PHOTOS:
        photo_id = upload_one(client, spec["color"])
        extra = {"translations": spec["translations"]} if "translations" in spec else {}
        photo = complete_bundle(photo_id, curator, title=spec["title"], caption=spec["caption"],
                                credit=spec["credit"], people=spec.get("people", PeopleShown.NONE), **extra)
        if "scopes" in spec:
            workflow.record_consent(db.session, photo, curator, person="Lena K.", given_on=date(2024, 5, 1),
                                    scopes=spec["scopes"])
        if spec.get("publish", True):
            publish(photo_id, curator)
        else:
            workflow.transition(db.session, db.session.get(Photo, photo_id), "review", curator)
        ids.append(photo_id)
    client.post("/logout")
    return ids


def _exhibition(photo_ids: list[int], curator: User, **fields: Any) -> Exhibition:
    values: dict[str, Any] = dict(slug="partnerschaftsbrunch-2026", title="Partnerschaftsbrunch 2026: Brücken",
                                  venue="Pfalzbau, Ludwigshafen am Rhein", starts_on=date(2026, 5, 10),
                                  ends_on=date(2026, 6, 28), intro=INTRO, created_by_id=curator.id)
    values.update(fields)
    exhibition = Exhibition(**values)
    db.session.add(exhibition)
    db.session.flush()
    for position, photo_id in enumerate(photo_ids, start=1):
        caption = "Eröffnungsbild der Ausstellung" if position == 1 else ""
        db.session.add(ExhibitionItem(exhibition_id=exhibition.id, photo_id=photo_id, position=position * 10,
                                      caption=caption))
    db.session.commit()
    return exhibition


@pytest.fixture
def show(app: Flask, client: FlaskClient, people: dict[str, Any]) -> dict[str, Any]:
    ids = _make_photos(client, people)
    exhibition = _exhibition(ids, people["curator"])
    return {"ids": ids, "exhibition_id": exhibition.id}


def _export(client: FlaskClient, exhibition_id: int, kind: str, language: str = "de") -> Export:
    response = client.post(f"/curate/exhibitions/{exhibition_id}/exports", data={"kind": kind, "language": language})
    assert response.status_code == 303, response.get_data(as_text=True)
    export_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    db.session.expire_all()
    return db.session.get(Export, export_id)


def _download(client: FlaskClient, export: Export) -> bytes:
    response = client.get(f"/curate/exports/{export.id}/download")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return response.get_data()


def _render(pdf: bytes, name: str) -> list[Path]:
    """Every page as a PNG at 40 dpi in test-artifacts/exports/<name>-N.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    source = ARTIFACTS / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run(["/usr/bin/pdftoppm", "-r", "40", "-png", str(source), str(ARTIFACTS / name)], check=True,
                   capture_output=True, timeout=120)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


def _staging_leftovers(app: Flask) -> list[Path]:
    return list(Path(app.config["STAGING_DIR"]).glob("export-*"))


# --------------------------------------------------------------------------------------------------------------------
# The print shop's ZIP


def test_zip_has_the_printable_originals_in_order_with_credits_and_readme(app: Flask, client: FlaskClient,
                                                                             people: dict[str, Any],
                                                                             show: dict[str, Any]) -> None:
    login(client, "cora")
    export = _export(client, show["exhibition_id"], "zip")
    assert export.status == ExportStatus.DONE, export.error
    assert (export.done, export.total) == (5, 5)
    assert export.key == f"exports/{export.id}/partnerschaftsbrunch-2026-druckpaket-de.zip"
    data = _download(client, export)
    assert len(data) == export.size_bytes
    ids = show["ids"]

    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert package.testzip() is None
        names = package.namelist()
        # No. 4 has consent for print but not for the exhibition, where the prints hang: not in the package
        assert names == ["README.txt", "credits.csv", "credits.json", "01-bruecke-ueber-den-rhein.jpg",
                         "02-pont-du-bonhomme.jpg"]
        for name, index in (("01-bruecke-ueber-den-rhein.jpg", 0), ("02-pont-du-bonhomme.jpg", 1)):
            assert package.read(name) == jpeg_bytes(PHOTOS[index]["color"]), f"{name} is not the original"
            assert package.getinfo(name).compress_type == zipfile.ZIP_STORED
        raw_csv = package.read("credits.csv")
        readme = package.read("README.txt").decode("utf-8")
        document = json.loads(package.read("credits.json"))

    assert raw_csv.startswith(b"\xef\xbb\xbf"), "Excel needs the byte order mark to read UTF-8"
    rows = list(csv.DictReader(io.StringIO(raw_csv.decode("utf-8-sig")), delimiter=";"))
    assert [row["number"] for row in rows] == ["1", "2", "3", "4", "5"]
    first = rows[0]
    assert first["file"] == "01-bruecke-ueber-den-rhein.jpg"
    assert first["title"] == "Brücke über den Rhein"
    assert first["caption"] == "Eröffnungsbild der Ausstellung"  # the exhibition's own caption comes first
    assert first["photographer"] == "Anna Beispiel"
    assert first["association"] == "Freundeskreis Ludwigshafen-Pasadena" or "Pasadena" in first["association"]
    assert first["licence"] == "CC BY 4.0"
    assert first["attribution"] == "Foto: Anna Beispiel · CC BY 4.0"
    assert first["consent_scope"] == "keine erkennbaren Personen"
    assert rows[1]["caption"] == "Morgennebel am Blavet"
    assert rows[2]["file"] == "" and rows[2]["included"] == "nein/no"
    assert "Einwilligung" in rows[2]["reason_de"] and "Druck" in rows[2]["reason_de"]
    assert "consent" in rows[2]["reason_en"] and "print" in rows[2]["reason_en"]
    assert rows[2]["title"] == "" and rows[2]["photographer"] == ""  # nothing of an excluded photo goes out
    assert rows[3]["included"] == "nein/no" and "Ausstellung" in rows[3]["reason_de"]
    assert "exhibition" in rows[3]["reason_en"] and rows[3]["title"] == ""
    assert rows[4]["reason_de"] == "nicht veröffentlicht (Status: in Prüfung)"

    assert document["exhibition"]["title"] == "Partnerschaftsbrunch 2026: Brücken"
    assert (document["included"], document["excluded"]) == (2, 3)
    assert [p["number"] for p in document["photos"]] == [1, 2, 3, 4, 5]
    assert document["photos"][0]["photo_id"] == ids[0]
    assert document["photos"][0]["sha256"] == db.session.get(Photo, ids[0]).sha256
    assert document["photos"][2]["included"] is False
    assert "consent_scopes" not in document["photos"][2] and "title" not in document["photos"][2]
    assert "print" in document["photos"][2]["reason"]["en"]
    assert document["photos"][3]["included"] is False

    assert "Druckpaket: Partnerschaftsbrunch 2026: Brücken" in readme
    assert "Enthalten: 2 von 5 Fotos" in readme and "Included: 2 of 5 photos" in readme
    assert "Nr. 3: für den Druck fehlt: eine gültige Einwilligung" in readme
    assert "No. 3: missing for print: a valid consent" in readme
    assert "Nr. 5: nicht veröffentlicht" in readme
    assert "Brückenfest" not in readme and "Neue Fußgängerbrücke" not in readme
    assert "10. Mai 2026 – 28. Juni 2026" in readme and "10 May 2026 – 28 June 2026" in readme

    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "export.requested"))
    assert event is not None and event.subject_id == export.id and event.detail["kind"] == "zip"
    assert event.actor_id == people["curator"].id
    assert _staging_leftovers(app) == []


def test_english_zip_uses_the_english_texts(app: Flask, client: FlaskClient, show: dict[str, Any]) -> None:
    login(client, "ada")
    export = _export(client, show["exhibition_id"], "zip", "en")
    assert export.status == ExportStatus.DONE, export.error
    with zipfile.ZipFile(io.BytesIO(_download(client, export))) as package:
        assert "02-bonhomme-bridge.jpg" in package.namelist()
        readme = package.read("README.txt").decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(package.read("credits.csv").decode("utf-8-sig")), delimiter=";"))
    assert readme.startswith("Print package: Partnerschaftsbrunch 2026: Brücken")
    assert rows[1]["title"] == "Bonhomme bridge" and rows[1]["caption"] == "Morning mist on the Blavet"
    assert rows[0]["attribution"] == "Photo: Anna Beispiel · CC BY 4.0"
    assert rows[0]["consent_scope"] == "no identifiable people"


def test_export_page_shows_progress_then_the_download(app: Flask, client: FlaskClient, people: dict[str, Any],
                                                      show: dict[str, Any]) -> None:
    login(client, "cora")
    exhibition = db.session.get(Exhibition, show["exhibition_id"])
    queued = exports.request_export(db.session, exhibition, "zip", "de", people["curator"])
    queued.done = 2
    db.session.commit()
    page = client.get(f"/curate/exports/{queued.id}").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="2">' in page
    assert "2 von 5" in page
    assert "herunterladen" not in page

    queued.created_at -= timedelta(hours=7)  # its job was lost (a worker stopped): people are told to start again
    db.session.commit()
    page = client.get(f"/curate/exports/{queued.id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page and "seit Stunden nicht fertig" in page
    assert "Noch einmal versuchen" in page
    queued.created_at += timedelta(hours=7)
    db.session.commit()

    done = _export(client, show["exhibition_id"], "catalogue")
    page = client.get(f"/curate/exports/{done.id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page
    assert f'href="/curate/exports/{done.id}/download"' in page
    assert "partnerschaftsbrunch-2026-katalog-de.pdf herunterladen" in page

    with app.test_request_context():
        from flask import render_template
        from flask_login import login_user

        login_user(people["curator"])
        html = render_template("exhibitions/_exports.html", exhibition=exhibition)
    assert html.count('name="csrf_token"') == 4
    assert f'action="/curate/exhibitions/{exhibition.id}/exports"' in html
    assert f'href="/curate/exports/{done.id}/download"' in html  # the finished one, to download
    assert "wartet (2 von 5)" in html  # the queued one, with its progress


# --------------------------------------------------------------------------------------------------------------------
# The catalogue


def _link_targets(reader: PdfReader) -> list[str]:
    targets = []
    for page in reader.pages:
        for annotation in page.get("/Annots") or []:
            action = annotation.get_object().get("/A")
            if action is not None and action.get("/URI"):
                targets.append(str(action["/URI"]))
    return targets


def test_catalogue_has_a_cover_and_a_page_per_printable_photo(
        app: Flask, client: FlaskClient, show: dict[str, Any]) -> None:
    login(client, "cora")
    export = _export(client, show["exhibition_id"], "catalogue")
    assert export.status == ExportStatus.DONE, export.error
    data = _download(client, export)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1 + 3  # cover, three printable photos; the ones left out are not named
    text = [page.extract_text() for page in reader.pages]

    cover = text[0]
    assert "Partnerschaftsbrunch 2026: Brücken" in cover
    assert "10. Mai 2026 – 28. Juni 2026" in cover and "Pfalzbau, Ludwigshafen am Rhein" in cover
    assert "Die Brücken unserer Partnerstädte" in cover and "• Konrad-Adenauer-Brücke" in cover
    assert "<script>" not in cover and "**" not in cover

    ids = show["ids"]
    first = text[1]
    for words in ("1 Brücke über den Rhein", "Eröffnungsbild der Ausstellung", "Fotografie", "Anna Beispiel",
                  "Verein", "Pasadena", "Lizenz", "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/",
                  "Foto: Anna Beispiel · CC BY 4.0", f"http://localhost/photos/{ids[0]}"):
        assert words in first, words
    assert "4 Schüler:innen auf dem Steg" in text[3] and "Jens Krämer" in text[3]
    assert not any("Brückenfest" in page for page in text[1:4]), "a photo without print consent was printed"
    assert not any("Neue Fußgängerbrücke" in page or "Nicht im Katalog" in page for page in text)

    assert _link_targets(reader) == [f"http://localhost/photos/{ids[i]}" for i in (0, 1, 3)]
    # the photo itself: one image per photo page, the preview's pixels
    images = [list(page.images) for page in reader.pages]
    assert [len(found) for found in images] == [0, 1, 1, 1]
    assert images[1][0].image.size == (640, 480)

    pngs = _render(data, "catalogue-de")
    assert len(pngs) == len(reader.pages)
    assert _staging_leftovers(app) == []


def test_the_qr_code_is_the_encoding_of_the_photo_page(app: Flask, client: FlaskClient, show: dict[str, Any],
                                                       tmp_path: Path) -> None:
    """No QR reader here: the drawn code is read back module by module from a 200 dpi rendering (inside the link
    rectangle) and compared with what reportlab's encoder makes of the URL."""
    from PIL import Image
    from reportlab.graphics.barcode.qr import QrCodeWidget

    login(client, "cora")
    data = _download(client, _export(client, show["exhibition_id"], "catalogue"))
    page = PdfReader(io.BytesIO(data)).pages[1]
    annotation = page["/Annots"][0].get_object()
    url = str(annotation["/A"]["/URI"])
    left, bottom, right, top = (float(v) for v in annotation["/Rect"])
    assert round(right - left, 3) == round(top - bottom, 3)  # square
    (tmp_path / "c.pdf").write_bytes(data)
    subprocess.run(["/usr/bin/pdftoppm", "-r", "200", "-f", "2", "-l", "2", "-png", "-singlefile",
                    str(tmp_path / "c.pdf"), str(tmp_path / "page")], check=True, timeout=60)
    image = Image.open(tmp_path / "page.png").convert("L")
    widget = QrCodeWidget(url, barLevel="M")
    widget.qr.make()
    expected = [[bool(cell) for cell in row] for row in widget.qr.modules]
    count, border = len(expected), 2
    step = (right - left) / (count + 2 * border)
    height = float(page.mediabox.height)
    seen = [[image.getpixel((round((left + (c + border + 0.5) * step) * 200 / 72),
                             round((height - (top - (r + border + 0.5) * step)) * 200 / 72))) < 128
             for c in range(count)] for r in range(count)]
    assert seen == expected
    assert url == f"http://localhost/photos/{show['ids'][0]}"


def test_english_catalogue_and_the_base_url_setting(app: Flask, client: FlaskClient, show: dict[str, Any]) -> None:
    app.config["BASE_URL"] = "https://bruecken.example.org/"
    login(client, "cora")
    export = _export(client, show["exhibition_id"], "catalogue", "en")
    assert export.status == ExportStatus.DONE, export.error
    data = _download(client, export)
    reader = PdfReader(io.BytesIO(data))
    text = [page.extract_text() for page in reader.pages]
    assert "Catalogue" in text[0] and "10 May 2026 – 28 June 2026" in text[0]
    assert "2 Bonhomme bridge" in text[2] and "Morning mist on the Blavet" in text[2]
    assert "Photographer" in text[2] and "Association" in text[2] and "Licence" in text[2]
    assert not any("Not in the catalogue" in page or "Brückenfest" in page for page in text)
    assert _link_targets(reader)[0] == f"https://bruecken.example.org/photos/{show['ids'][0]}"
    assert reader.metadata.title == "Partnerschaftsbrunch 2026: Brücken – Catalogue"
    assert len(_render(data, "catalogue-en")) == len(reader.pages)


def test_catalogue_of_only_printable_photos_has_no_excluded_page(app: Flask, client: FlaskClient,
                                                                 people: dict[str, Any],
                                                                 show: dict[str, Any]) -> None:
    exhibition = _exhibition([show["ids"][0], show["ids"][1]], people["curator"], slug="nur-druckbar",
                             title="Nur druckbar", intro="", starts_on=None, ends_on=None, venue="")
    login(client, "cora")
    export = _export(client, exhibition.id, "catalogue")
    reader = PdfReader(io.BytesIO(_download(client, export)))
    assert len(reader.pages) == 3
    assert "Nicht im Katalog" not in reader.pages[-1].extract_text()


def test_a_long_introduction_flows_onto_more_cover_pages(app: Flask, client: FlaskClient, people: dict[str, Any],
                                                         show: dict[str, Any]) -> None:
    paragraph = "Brücken verbinden Städte, Menschen und Geschichten über Grenzen hinweg. " * 12
    exhibition = _exhibition([show["ids"][0]], people["curator"], slug="lang", title="Lange Einleitung",
                             intro="\n\n".join(f"{n}. Absatz: {paragraph}" for n in range(1, 16)))
    login(client, "cora")
    export = _export(client, exhibition.id, "catalogue")
    data = _download(client, export)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 3  # the introduction needs more than one page, then the photo
    full = "".join(page.extract_text() for page in reader.pages[:-1])
    assert "15. Absatz" in full
    assert "Brücke über den Rhein" in reader.pages[-1].extract_text()
    _render(data, "catalogue-long-intro")


# --------------------------------------------------------------------------------------------------------------------
# The contact sheet


def test_contact_sheet_numbers_every_item_and_marks_the_unpublished(app: Flask, client: FlaskClient,
                                                                    people: dict[str, Any],
                                                                    show: dict[str, Any]) -> None:
    login(client, "cora")
    export = _export(client, show["exhibition_id"], "contact_sheet")
    assert export.status == ExportStatus.DONE, export.error
    data = _download(client, export)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Kontaktbogen · Seite 1 von 1" in text
    for number, spec in enumerate(PHOTOS, start=1):
        assert re.search(rf"\b{number}\b", text)
        assert spec["title"][:12] in text
    assert text.count("nicht veröffentlicht") == 1  # only the photo still in review
    assert "Anna Beispiel" not in text and "Pasadena" not in text  # no names for the jury
    assert len(list(reader.pages[0].images)) == 5
    assert len(_render(data, "contact-sheet")) == 1


def test_contact_sheet_of_many_photos_has_twenty_per_page(app: Flask, client: FlaskClient, people: dict[str, Any],
                                                          show: dict[str, Any]) -> None:
    """45 items: three pages (20, 20, 5), numbers 1–45; rows of photos without images get a placeholder."""
    curator = people["curator"]
    template = db.session.get(Photo, show["ids"][0])
    ids = list(show["ids"])
    for n in range(40):  # rows only: no images, as for photos still being processed
        photo = Photo(association_id=template.association_id, status=PhotoStatus.PROCESSING,
                      sha256=f"{n:064x}", original_key=f"originals/00/00/{n:064x}", format="jpeg",
                      mime_type="image/jpeg", size_bytes=1, width=10, height=10, title=f"Entwurf {n + 6}")
        db.session.add(photo)
        db.session.flush()
        ids.append(photo.id)
    exhibition = _exhibition(ids, curator, slug="viele", title="Viele Fotos")
    login(client, "cora")
    export = _export(client, exhibition.id, "contact_sheet", "en")
    assert export.status == ExportStatus.DONE, export.error
    assert (export.done, export.total) == (45, 45)
    data = _download(client, export)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 3
    texts = [page.extract_text() for page in reader.pages]
    assert "Contact sheet · page 3 of 3" in texts[2]
    assert "45" in texts[2] and "Entwurf 45" in texts[2]
    assert [text.count("not published") for text in texts] == [16, 20, 5]
    assert [len(list(page.images)) for page in reader.pages] == [5, 0, 0]
    assert len(_render(data, "contact-sheet-45")) == 3


# --------------------------------------------------------------------------------------------------------------------
# Refusals and failures


def test_members_and_visitors_cannot_export(app: Flask, client: FlaskClient, people: dict[str, Any],
                                            show: dict[str, Any]) -> None:
    exhibition = db.session.get(Exhibition, show["exhibition_id"])
    made = exports.request_export(db.session, exhibition, "zip", "de", people["curator"])
    url = f"/curate/exhibitions/{exhibition.id}/exports"
    assert client.post(url, data={"kind": "zip", "language": "de"}).headers["Location"].startswith("/login")
    assert "/login" in client.get(f"/curate/exports/{made.id}").headers["Location"]
    login(client, "mia")
    assert client.post(url, data={"kind": "zip", "language": "de"}).status_code == 403
    assert client.get(f"/curate/exports/{made.id}").status_code == 403
    assert client.get(f"/curate/exports/{made.id}/download").status_code == 403
    assert db.session.scalar(select(Export.id).where(Export.id != made.id)) is None


def test_bad_requests_are_refused_and_leave_nothing(app: Flask, client: FlaskClient, people: dict[str, Any],
                                                    show: dict[str, Any]) -> None:
    login(client, "cora")
    url = f"/curate/exhibitions/{show['exhibition_id']}/exports"
    response = client.post(url, data={"kind": "poster", "language": "de"})
    assert response.status_code == 422 and "Diese Art von Export gibt es nicht" in response.get_data(as_text=True)
    assert client.post(url, data={"kind": "zip", "language": "fr"}).status_code == 422
    empty = _exhibition([], people["curator"], slug="leer", title="Leer")
    response = client.post(f"/curate/exhibitions/{empty.id}/exports", data={"kind": "zip", "language": "de"})
    assert response.status_code == 409 and "noch keine Fotos" in response.get_data(as_text=True)
    assert client.post("/curate/exhibitions/99999/exports", data={"kind": "zip"}).status_code == 404
    assert client.get("/curate/exports/99999").status_code == 404
    assert db.session.scalar(select(Export.id)) is None


def test_a_missing_original_fails_the_export_with_its_reason_and_leaves_no_file(
        app: Flask, client: FlaskClient, show: dict[str, Any]) -> None:
    photo = db.session.get(Photo, show["ids"][1])
    get_store().delete(photo.original_key)
    login(client, "cora")
    export = _export(client, show["exhibition_id"], "zip")
    assert export.status == ExportStatus.FAILED
    de, en = exports.failure_messages(export)
    assert "Das Original von Nr. 2 „Pont du Bonhomme“" in de and "fehlt im Speicher" in de
    assert "The original of no. 2 'Pont du Bonhomme'" in en and "missing from storage" in en
    assert export.key is None and export.done == 1  # the first photo was in the package already
    assert _staging_leftovers(app) == []
    assert [info.key for info in get_store().list("exports/")] == []
    page = client.get(f"/curate/exports/{export.id}").get_data(as_text=True)
    assert "Der Export ist fehlgeschlagen" in page and "missing from storage" in page
    assert 'http-equiv="refresh"' not in page
    assert "Noch einmal versuchen" in page
    assert client.get(f"/curate/exports/{export.id}/download").status_code == 409


def test_a_missing_preview_fails_the_catalogue(app: Flask, client: FlaskClient, show: dict[str, Any]) -> None:
    photo = db.session.get(Photo, show["ids"][3])
    get_store().delete(photo.derivative("preview", "jpeg").key)
    login(client, "cora")
    export = _export(client, show["exhibition_id"], "catalogue")
    assert export.status == ExportStatus.FAILED
    assert "Die Vorschau von Nr. 4" in exports.failure_messages(export)[0]
    assert _staging_leftovers(app) == []


def test_the_job_runs_once_and_a_gone_export_is_fine(app: Flask, client: FlaskClient, people: dict[str, Any],
                                                     show: dict[str, Any]) -> None:
    exhibition = db.session.get(Exhibition, show["exhibition_id"])
    export = exports.request_export(db.session, exhibition, "contact_sheet", "de", people["curator"])
    exports.run_export(db.session, get_store(), app.config, export.id)
    first = (export.key, export.finished_at)
    assert export.status == ExportStatus.DONE
    exports.run_export(db.session, get_store(), app.config, export.id)  # a duplicate job does nothing
    assert (export.key, export.finished_at) == first
    assert exports.run_export(db.session, get_store(), app.config, 99999) is None


def test_file_names_are_ascii_and_numbers_get_three_digits_from_100_items() -> None:
    assert exports.file_safe("Brücke über den Rhein") == "bruecke-ueber-den-rhein"
    assert exports.file_safe("Şəki körpüsü – Ağ şəhər") == "seki-koerpuesue-ag-seher"  # German folding: ö -> oe
    assert exports.file_safe("Straße 1: „Alte“ Brücke!") == "strasse-1-alte-bruecke"
    assert exports.file_safe("Міст через Случ") == ""
    assert exports.file_safe("a" * 50 + " " + "b" * 50) == "a" * 50
    assert exports.zip_name(7, 99, "Brücke", "jpg") == "07-bruecke.jpg"
    assert exports.zip_name(7, 100, "Brücke", "jpg") == "007-bruecke.jpg"
    assert exports.zip_name(120, 120, "Міст", "png") == "120-foto.png"


def test_export_wording_helpers() -> None:
    assert exports.kind_label("catalogue") == "Katalog (PDF)"
    assert exports.kind_label("catalogue", "en") == "catalogue (PDF)"
    assert exports.status_label(ExportStatus.RUNNING) == "wird erstellt"
    assert exports.intro_paragraphs("# Titel\n\nText mit [Link](https://example.org) & mehr") == [
        "Titel", "Text mit Link & mehr"]
    assert exports.intro_paragraphs("Vorher:\n\n3. drei\n4. vier\n\n- a\n- b\n\nNachher") == [
        "Vorher:", "3. drei\n4. vier", "• a\n• b", "Nachher"]
    assert exports.format_date(date(2026, 3, 1), "de") == "1. März 2026"


@pytest.fixture(autouse=True, scope="module")
def _tools() -> None:
    if not shutil.which("pdftoppm") and not Path("/usr/bin/pdftoppm").exists():
        pytest.fail("pdftoppm (poppler-utils) is needed to render the exported PDFs")


def test_a_package_made_before_a_withdrawal_is_not_handed_out_any_more(client: FlaskClient, people: dict[str, Any],
                                                                      show: dict[str, Any]) -> None:
    from archive import workflow

    login(client, "cora")
    export = _export(client, show["exhibition_id"], "zip")
    assert export.status == ExportStatus.DONE, export.error
    assert client.get(f"/curate/exports/{export.id}/download").status_code == 200
    photo = db.session.get(Photo, show["ids"][0])
    export.finished_at = export.finished_at.replace(microsecond=0) - timedelta(seconds=1)  # made a moment ago
    db.session.commit()
    workflow.transition(db.session, photo, "withdraw", people["curator"], "Rechte unklar")
    response = client.get(f"/curate/exports/{export.id}/download")
    assert response.status_code == 410 and "neu" in response.get_data(as_text=True)
