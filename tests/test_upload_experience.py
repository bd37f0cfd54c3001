"""The upload page as people use it: many real photos with the batch's details (credit, licence, people, minors,
place, tags) on every one, by the plain form and by the chunk API the page's script uses; the drop zone and the
texts the script shows come from the page, in its language."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from archive.models import Licence, PeopleShown, Photo, Tag, User, db
from tests.conftest import CORPUS, login
from tests.photos import a_place, upload

ROOT = Path(__file__).resolve().parent.parent
JSON = {"Accept": "application/json"}
NAMES = ("Canon PowerShot A560.jpg", "Nikon D40.jpg", "Canon EOS REBEL T3i.jpg")


def corpus_files(*names: str) -> list[tuple[bytes, str]]:
    return [((CORPUS / "cameras/jpg" / name).read_bytes(), name) for name in names]


def form_post(client: FlaskClient, files: list[tuple[bytes, str]], **kwargs: Any) -> Any:
    """The form as a browser without JavaScript sends it: the answer is the results page."""
    return client.post("/upload", data={"photos": [(io.BytesIO(b), n) for b, n in files]},
                       content_type="multipart/form-data", **kwargs)


def batch(place_id: int, **extra: str) -> dict[str, str]:
    return {"credit": "Paula Pasadena", "licence": "cc-by-4.0", "people": "none", "minors": "no",
            "place": str(place_id), "tags": "Rhein, abendlicht ,brücke, Rhein", **extra}


def assert_batch_landed(photo_ids: list[int], place_id: int) -> None:
    for photo_id in photo_ids:
        photo = db.session.get(Photo, photo_id)
        db.session.refresh(photo)
        assert (photo.credit, photo.licence, photo.people, photo.minors, photo.place_id) == (
            "Paula Pasadena", Licence.CC_BY, PeopleShown.NONE, False, place_id), photo_id
        names = {t.name for t in photo.tags}
        assert {"Rhein", "abendlicht", "Brücke"} <= names, names  # the curators' "Brücke", not a new "brücke"
    assert db.session.scalar(select(func.count(Tag.id)).where(func.lower(Tag.name) == "rhein")) == 1
    assert db.session.scalar(select(Tag.controlled).where(Tag.name == "Brücke")) is True
    assert db.session.scalar(select(func.count(Tag.id)).where(Tag.name == "brücke")) == 0


def controlled_bridge_tag() -> None:
    db.session.add(Tag(name="Brücke", controlled=True))
    db.session.commit()


def test_the_batch_details_land_on_every_photo_of_a_form_upload(client: FlaskClient,
                                                                people: dict[str, User]) -> None:
    place = a_place()
    controlled_bridge_tag()
    login(client, "mia")
    response = upload(client, corpus_files(*NAMES), **batch(place.id))
    assert response.status_code == 201, response.get_data(as_text=True)
    ids = [r["photo_id"] for r in response.get_json()["results"]]
    assert len(ids) == 3 and all(r["outcome"] == "archived" for r in response.get_json()["results"])
    assert_batch_landed(ids, place.id)


def test_the_batch_details_land_on_every_photo_sent_by_chunks(client: FlaskClient, people: dict[str, User]) -> None:
    place = a_place()
    controlled_bridge_tag()
    login(client, "mia")
    ids = []
    for data, name in corpus_files(*NAMES[:2]):
        created = client.post("/api/uploads", json={"filename": name, "size": len(data), **batch(place.id)},
                              headers=JSON)
        assert created.status_code == 201, created.get_data(as_text=True)
        url, offset = created.get_json()["url"], 0
        while offset < len(data):
            answer = client.patch(url, data=data[offset:offset + 400_000], headers={**JSON,
                                                                                   "Upload-Offset": str(offset)})
            offset = answer.get_json()["received"]
        assert answer.status_code == 201
        ids.append(answer.get_json()["result"]["photo_id"])
    assert_batch_landed(ids, place.id)


def test_a_place_not_in_the_list_is_refused_before_anything_is_stored(app: Flask, client: FlaskClient,
                                                                     people: dict[str, User]) -> None:
    login(client, "mia")
    response = upload(client, corpus_files(NAMES[0]), place="999")
    assert response.status_code == 422 and "Ort" in response.get_json()["error"]["de"]
    api = client.post("/api/uploads", json={"filename": "a.jpg", "size": 10, "place": "999"}, headers=JSON)
    assert api.status_code == 422 and api.get_json()["error"]["code"] == "unknown_place"
    long_tag = client.post("/api/uploads", json={"filename": "a.jpg", "size": 10, "tags": "x" * 101}, headers=JSON)
    assert long_tag.status_code == 422 and "100 Zeichen" in long_tag.get_json()["error"]["de"]
    assert db.session.scalar(select(Photo.id)) is None
    assert not [p for p in Path(app.config["STAGING_DIR"]).rglob("*") if p.is_file()]


def texts_of(page: str) -> dict[str, str]:
    block = re.search(r'<script type="application/json" id="upload-texts">(.*?)</script>', page, re.S)
    assert block, "the texts for the script are on the page"
    return json.loads(block.group(1))


def test_the_page_has_a_drop_zone_a_phone_friendly_picker_and_the_scripts_texts(client: FlaskClient,
                                                                               people: dict[str, User]) -> None:
    place = a_place()
    login(client, "mia")
    page = client.get("/upload").get_data(as_text=True)
    assert 'id="dropzone"' in page
    picker = re.search(r"<input id=\"photos\"[^>]*>", page).group(0)
    assert 'type="file"' in picker and "multiple" in picker and 'accept="image/*' in picker
    assert "required" in picker  # without the script the browser asks for files itself
    assert 'enctype="multipart/form-data"' in page and 'method="post"' in page  # the plain post still works
    assert f'<option value="{place.id}">{place.name} ({place.city})</option>' in page
    assert 'name="tags"' in page
    assert '<script src="/static/upload.js" defer></script>' in page
    texts = texts_of(page)
    assert texts["archivedCount"] == "{num} neu archiviert" and texts["retry"] == "Noch einmal versuchen"
    # The script shows only these texts: not one German or English sentence is written into it.
    script = (ROOT / "archive/static/upload.js").read_text(encoding="utf-8")
    code = "\n".join(re.sub(r"(^|\s)//.*$", "", line) for line in script.splitlines())  # without comments
    literals = re.findall(r'"([^"\n]*)"|\'([^\'\n]*)\'', code)
    literals = [a or b for a, b in literals]
    assert "application/json" in literals  # the search finds the script's strings
    words = r"[A-Za-zÄÖÜäöüß]{4,}"
    german = {word for text in texts.values() for word in re.findall(words, re.sub(r"{\w+}", "", text))}
    for literal in set(literals) - {"use strict"}:
        assert not re.search(r"[A-Za-zÄÖÜäöüß]{2,} [A-Za-zÄÖÜäöüß]{2,}", literal), literal  # no sentence
        assert not german & set(re.findall(words, literal)), literal
    assert "T." + "retry" in script and "T.archivedCount" in script


def test_the_results_page_links_each_new_photo_and_its_edit_page(client: FlaskClient,
                                                                people: dict[str, User]) -> None:
    login(client, "mia")
    page = form_post(client, corpus_files(*NAMES[:2]))
    assert page.status_code == 201
    text = page.get_data(as_text=True)
    ids = [photo.id for photo in db.session.scalars(select(Photo).order_by(Photo.id))]
    assert "2 neu archiviert" in text
    for photo_id in ids:
        assert f'href="/photos/{photo_id}/edit"' in text and f'href="/photos/{photo_id}"' in text


def test_the_english_page_speaks_english(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    page = client.get("/upload", headers=english).get_data(as_text=True)
    assert "<h1>Upload photos</h1>" in page
    for german in ("Fotos hochladen", "Personen auf den Fotos", "Schlagwörter", "später angeben", "Ort oder Brücke"):
        assert german not in page, german
    texts = texts_of(page)
    assert texts["archivedCount"] == "{num} newly archived" and texts["retry"] == "Try again"
    results = form_post(client, corpus_files(NAMES[0]), headers=english).get_data(as_text=True)
    assert "1 newly archived" in results and "neu archiviert" not in results
