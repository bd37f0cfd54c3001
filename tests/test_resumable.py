"""The chunk API (/api/uploads): big files in pieces, resumed after a dropped connection, refused in words, and
nothing half-written left behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from archive import accounts
from archive.models import Photo, User, db
from archive.resumable import ResumableUploads, remove_abandoned
from archive.services import get_store
from tests.conftest import CORPUS, PASSWORD, IsolatedClient, login, make_ready_app, settings_for

JSON = {"Accept": "application/json"}
CAMERA = CORPUS / "cameras/jpg/Canon EOS 30D (4).jpg"  # 2.5 MB: several chunks of 700 kB
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >>"
       b" endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n") * 40
HTML = b"<!doctype html><html><head><title>Scan</title></head><body><script>alert(1)</script></body></html>" * 20


class DroppingStream(io.RawIOBase):
    """A request body announced as ``announced`` bytes whose connection is reset after ``data``: what a phone
    losing its network sends. (Seekable only so that the test client reads the announced length.)"""

    def __init__(self, data: bytes, announced: int) -> None:
        self._data = io.BytesIO(data)
        self._announced = announced
        self._at_end = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at_end or self._data.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        self._at_end = self._announced + offset if whence == 2 else 0  # where the end would be, had it all arrived
        return self._at_end or self._data.seek(offset, whence)

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        if not chunk:
            raise ConnectionResetError("connection reset by peer")
        buffer[:len(chunk)] = chunk
        return len(chunk)


def create(client: FlaskClient, name: str, size: int, **fields: Any) -> Any:
    return client.post("/api/uploads", json={"filename": name, "size": size, **fields}, headers=JSON)


def put(client: FlaskClient, url: str, offset: int, data: bytes, method: str = "PATCH") -> Any:
    return client.open(url, method=method, data=data, headers={**JSON, "Upload-Offset": str(offset),
                                                               "Content-Type": "application/offset+octet-stream"})


def send_all(client: FlaskClient, url: str, data: bytes, start: int = 0, chunk: int = 700_000) -> Any:
    offset, response = start, None
    while offset < len(data):
        response = put(client, url, offset, data[offset:offset + chunk])
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        offset = response.get_json()["received"]
    return response


def leftovers(app: Flask) -> list[Path]:
    """Every file left in the staging folder (partial uploads included)."""
    return [p for p in Path(app.config["STAGING_DIR"]).rglob("*") if p.is_file()]


def test_a_file_in_several_chunks_arrives_byte_for_byte_and_is_archived(app: Flask, client: FlaskClient,
                                                                       people: dict[str, User]) -> None:
    login(client, "mia")
    data = CAMERA.read_bytes()
    response = create(client, CAMERA.name, len(data), sha256=hashlib.sha256(data).hexdigest())
    assert response.status_code == 201, response.get_data(as_text=True)
    upload = response.get_json()
    assert upload["received"] == 0 and upload["chunk_size"] >= 1_000_000 and response.headers["Location"]
    assert upload["url"] == response.headers["Location"]
    # Four chunks; the third by PUT (both verbs append).
    for n, offset in enumerate(range(0, len(data), 700_000)):
        answer = put(client, upload["url"], offset, data[offset:offset + 700_000], "PUT" if n == 2 else "PATCH")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    result = answer.get_json()["result"]
    assert result["outcome"] == "archived" and result["filename"] == CAMERA.name
    photo = db.session.get(Photo, result["photo_id"])
    assert photo.sha256 == hashlib.sha256(data).hexdigest() and photo.size_bytes == len(data)
    with get_store().open(photo.original_key) as stored:
        assert stored.read() == data
    assert result["photo_url"] == f"/photos/{photo.id}" and result["edit_url"] == f"/photos/{photo.id}/edit"
    # The answer stays readable (a client whose connection dropped during the last chunk learns it), and the
    # bytes are gone from the staging folder.
    again = client.get(upload["url"], headers=JSON).get_json()
    assert again["complete"] is True and again["result"]["photo_id"] == photo.id
    assert sorted(p.suffix for p in leftovers(app)) == [".json", ".lock"]


def test_an_interrupted_chunk_is_resumed_from_the_offset_the_archive_has(app: Flask, client: FlaskClient,
                                                                         people: dict[str, User]) -> None:
    login(client, "mia")
    data = CAMERA.read_bytes()
    url = create(client, CAMERA.name, len(data)).get_json()["url"]
    assert put(client, url, 0, data[:1_000_000]).get_json()["received"] == 1_000_000
    # The connection drops after 300 kB of a 1 MB chunk: the body announces 1 MB, only 300 kB arrive.
    body = DroppingStream(data[1_000_000:1_300_000], announced=1_000_000)
    dropped = client.open(url, method="PATCH", input_stream=body, headers={
        "Upload-Offset": "1000000", "Content-Type": "application/offset+octet-stream", **JSON})
    assert dropped.status_code == 400
    status = client.get(url, headers=JSON)
    assert status.status_code == 200 and status.headers["Cache-Control"] == "no-store"
    offset = status.get_json()["received"]
    assert offset == int(status.headers["Upload-Offset"]) == 1_300_000  # what arrived is kept
    answer = send_all(client, url, data, start=offset)
    assert answer.status_code == 201
    photo = db.session.get(Photo, answer.get_json()["result"]["photo_id"])
    with get_store().open(photo.original_key) as stored:
        assert stored.read() == data


def test_a_chunk_for_the_wrong_offset_is_refused_with_the_right_one(client: FlaskClient,
                                                                   people: dict[str, User]) -> None:
    login(client, "mia")
    data = CAMERA.read_bytes()
    url = create(client, CAMERA.name, len(data)).get_json()["url"]
    put(client, url, 0, data[:500_000])
    for wrong in (0, 400_000, 900_000):
        response = put(client, url, wrong, data[wrong:wrong + 100_000])
        assert response.status_code == 409
        assert response.get_json()["offset"] == 500_000 and response.headers["Upload-Offset"] == "500000"
        assert response.get_json()["error"]["code"] == "wrong_offset"
    assert client.get(url, headers=JSON).get_json()["received"] == 500_000  # nothing of them was kept
    missing = client.open(url, method="PATCH", data=b"x", headers=JSON)
    assert missing.status_code == 400 and "Upload-Offset" in missing.get_json()["error"]["de"]


def test_too_large_is_refused_in_words_before_and_while_sending(app: Flask, client: FlaskClient,
                                                                people: dict[str, User]) -> None:
    app.config["MAX_UPLOAD_BYTES"] = 1_000_000
    login(client, "mia")
    response = create(client, "riesig.jpg", 2_000_000)
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "too_large" and "größer als 1 MB" in error["de"] and "larger than 1 MB" in error["en"]
    # More bytes than announced: refused, and none of that chunk is kept.
    url = create(client, "klein.jpg", 1000).get_json()["url"]
    assert put(client, url, 0, b"\xff\xd8\xff" + b"x" * 500).status_code == 200
    over = put(client, url, 503, b"y" * 1000)
    assert over.status_code == 413 and over.get_json()["error"]["code"] == "more_than_announced"
    assert client.get(url, headers=JSON).get_json()["received"] == 503
    assert db.session.scalar(select(Photo.id)) is None


@pytest.mark.parametrize(("body", "detected"), [(PDF, "PDF"), (HTML, "HTML")])
def test_a_disguised_file_is_refused_naming_what_it_is_and_leaves_nothing(app: Flask, client: FlaskClient,
                                                                         people: dict[str, User], body: bytes,
                                                                         detected: str) -> None:
    login(client, "mia")
    url = create(client, "scan.jpg", len(body)).get_json()["url"]
    half = len(body) // 2
    assert put(client, url, 0, body[:half]).status_code == 200
    answer = put(client, url, half, body[half:], "PUT")
    assert answer.status_code == 415
    result = answer.get_json()["result"]
    assert result["outcome"] == "refused" and result["photo_id"] is None
    assert result["reason"]["code"] == "not_a_photo"
    assert f"Diese Datei ist kein Foto ({detected} erkannt)" in result["message"]
    assert f"This file is not a photo ({detected} detected)" in result["reason"]["en"]
    assert db.session.scalar(select(Photo.id)) is None
    assert list(get_store().list("originals/")) == []
    assert not [p for p in leftovers(app) if p.suffix == ".part" or p.parent.name == "staging"]
    english = client.get(url, headers={**JSON, "Accept-Language": "en"}).get_json()
    assert english["result"]["message"].startswith(f"This file is not a photo ({detected} detected)")


def test_another_person_can_neither_read_nor_append_nor_cancel_my_upload(client: FlaskClient,
                                                                       people: dict[str, User]) -> None:
    login(client, "mia")
    data = CAMERA.read_bytes()
    url = create(client, CAMERA.name, len(data)).get_json()["url"]
    put(client, url, 0, data[:100_000])
    client.post("/logout")
    for name in ("omar", "cora"):  # another association's member, and even a curator
        login(client, name)
        assert client.get(url, headers=JSON).status_code == 404
        assert put(client, url, 100_000, data[100_000:200_000]).status_code == 404
        assert client.delete(url, headers=JSON).status_code == 404
        client.post("/logout")
    assert client.get(url, headers=JSON).status_code == 401  # not logged in: a 401 in words, no login page
    login(client, "mia")
    assert client.get(url, headers=JSON).get_json()["received"] == 100_000
    assert client.get("/api/uploads/../../etc", headers=JSON).status_code == 404
    assert client.delete(url, headers=JSON).status_code == 204
    assert client.get(url, headers=JSON).status_code == 404


def test_abandoned_uploads_are_cleaned_and_fresh_ones_kept(app: Flask, client: FlaskClient,
                                                           people: dict[str, User]) -> None:
    login(client, "mia")
    old_url = create(client, "alt.jpg", 5000).get_json()["url"]
    put(client, old_url, 0, b"\xff\xd8\xff" + b"a" * 100)
    staging = Path(app.config["STAGING_DIR"])
    week_ago = time.time() - 7 * 86400
    for path in (staging / "uploads").rglob("*"):
        os.utime(path, (week_ago, week_ago))
    fresh_url = create(client, "neu.jpg", 5000).get_json()["url"]  # each new upload also clears old ones
    assert client.get(old_url, headers=JSON).status_code == 404
    assert client.get(fresh_url, headers=JSON).status_code == 200
    assert sorted(p.suffix for p in leftovers(app)) == [".json", ".part"]  # the fresh upload's
    # The cleanup on its own (for reconcile), with a clock a day and a half later.
    removed = remove_abandoned(staging, now=time.time() + 36 * 3600)
    assert removed == [fresh_url.rsplit("/", 1)[1]]
    assert leftovers(app) == []
    assert remove_abandoned(staging) == []


def test_uploads_are_counted_against_the_size_limit_and_the_id_shape(app: Flask) -> None:
    uploads = ResumableUploads(Path(app.config["STAGING_DIR"]), 1000)
    with pytest.raises(Exception) as refused:
        uploads.get(1, "../../../../etc/passwd")
    assert getattr(refused.value, "status", None) == 404
    upload = uploads.create(1, "a.jpg", 10, association_id=1)
    assert uploads.append(1, upload.id, 0, io.BytesIO(b"0123456789")).received == 10
    with pytest.raises(Exception) as other:
        uploads.get(2, upload.id)
    assert getattr(other.value, "status", None) == 404


def test_a_checksum_that_does_not_match_is_refused(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    data = CAMERA.read_bytes()
    url = create(client, CAMERA.name, len(data), sha256="0" * 64).get_json()["url"]
    put(client, url, 0, data[:1_500_000])
    answer = put(client, url, 1_500_000, data[1_500_000:])
    assert answer.status_code == 422 and answer.get_json()["result"]["reason"]["code"] == "checksum_mismatch"
    assert db.session.scalar(select(Photo.id)) is None
    assert create(client, "x.jpg", 10, sha256="nicht-hex").status_code == 400


def test_session_posts_need_the_csrf_header_and_tokens_do_not(tmp_path: Path) -> None:
    from archive.auth import hash_password
    from archive.models import Association, Role

    app = make_ready_app(settings_for(tmp_path / "csrf", WTF_CSRF_ENABLED=True))
    app.test_client_class = IsolatedClient
    with app.app_context():
        pasadena = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
        user = User(username="mia", role=Role.MEMBER, association_id=pasadena, password_hash=hash_password(PASSWORD))
        db.session.add(user)
        db.session.commit()
        _row, secret = accounts.create_token(db.session, user, "Skript")
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        assert client.post("/login", data={"username": "mia", "password": PASSWORD,
                                           "csrf_token": token}).status_code == 302
        form_token = client.get("/upload").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
        data = CAMERA.read_bytes()[:2000]
        refused = create(client, "a.jpg", 2000)
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "form_expired"
        created = client.post("/api/uploads", json={"filename": "a.jpg", "size": 2000},
                              headers={**JSON, "X-CSRFToken": form_token})
        assert created.status_code == 201
        url = created.get_json()["url"]
        assert put(client, url, 0, data[:1000]).status_code == 400  # a PATCH needs it too
        ok = client.patch(url, data=data[:1000], headers={**JSON, "Upload-Offset": "0", "X-CSRFToken": form_token})
        assert ok.status_code == 200 and ok.get_json()["received"] == 1000
        # A script with a bearer token: no session, no CSRF token, its own uploads.
        script = app.test_client()
        bearer = {**JSON, "Authorization": f"Bearer {secret}"}
        made = script.post("/api/uploads", json={"filename": "b.jpg", "size": 10}, headers=bearer)
        assert made.status_code == 201 and "Set-Cookie" not in made.headers
        assert script.get(url, headers=bearer).get_json()["received"] == 1000  # the same person
        db.session.remove()
        db.engine.dispose()


def test_reconcile_removes_uploads_nobody_resumed(app: Flask, client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    url = create(client, "liegen-gelassen.jpg", 5000).get_json()["url"]
    put(client, url, 0, b"\xff\xd8\xff" + b"a" * 100)
    day_and_a_half_ago = time.time() - 36 * 3600
    for path in (Path(app.config["STAGING_DIR"]) / "uploads").rglob("*"):
        os.utime(path, (day_and_a_half_ago, day_and_a_half_ago))
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["reconcile", "--json"])
    assert result.exit_code == 0, result.output
    assert f"uploads/{url.rsplit('/', 1)[1]}" in json.loads(result.output.strip().splitlines()[-1])["removed_staged"]
    assert leftovers(app) == []
    assert client.get(url, headers=JSON).status_code == 404


def test_cleaning_up_never_pulls_the_folder_from_under_an_upload_being_created(app: Flask) -> None:
    """Two files start at once: one request has made the person's folder and not yet its first file while the
    other cleans up abandoned uploads. The folder must still be there for the first."""
    staging = Path(app.config["STAGING_DIR"])
    uploads = ResumableUploads(staging, max_bytes=10_000)
    folder = staging / "uploads" / "7"
    folder.mkdir(parents=True)  # what create() has done so far
    remove_abandoned(staging)  # the other request
    assert folder.is_dir()
    upload = uploads.create(7, "bruecke.jpg", 100, association_id=1)
    assert uploads.get(7, upload.id).received == 0
