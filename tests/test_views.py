"""The pages: log in, upload many files, see the grid and the photo, and who may see which image."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from archive.models import Photo, PhotoStatus, User, db
from tests.conftest import PASSWORD, jpeg_bytes, login, make_ready_app, settings_for
from tests.servers.database import lock_for_writers, make_the_database_disappear


def upload(client: FlaskClient, files: list[tuple[bytes, str]], json: bool = True, **form: str) -> Any:
    data: dict[str, Any] = {"photos": [(io.BytesIO(b), n) for b, n in files], **form}
    headers = {"Accept": "application/json"} if json else {}
    return client.post("/upload", data=data, content_type="multipart/form-data", headers=headers)


def test_login_page_and_wrong_password(client: FlaskClient, people: dict[str, User]) -> None:
    assert "Anmelden" in client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": "mia", "password": "wrong"})
    assert response.status_code == 401
    assert "falsch" in response.get_data(as_text=True)
    # An unknown name gets the very same answer: names do not leak.
    unknown = client.post("/login", data={"username": "nobody", "password": "wrong"})
    assert unknown.status_code == 401


def test_login_refuses_to_redirect_elsewhere(client: FlaskClient, people: dict[str, User]) -> None:
    response = client.post("/login?next=//evil.example/x", data={"username": "mia", "password": PASSWORD})
    assert response.headers["Location"] == "/photos"


def test_twenty_photos_at_once_then_the_grid_and_a_photo(client: FlaskClient, people: dict[str, User],
                                                        corpus: Path) -> None:
    login(client, "mia")
    files = [(jpeg_bytes((i * 12, 100, 200 - i * 5)), f"bruecke-{i:02}.jpg") for i in range(19)]
    files.append(((corpus / "cameras/jpg/Canon EOS 30D (4).jpg").read_bytes(), "Canon EOS 30D (4).jpg"))
    response = upload(client, files)
    assert response.status_code == 201
    results = response.get_json()["results"]
    assert [r["outcome"] for r in results] == ["archived"] * 20

    grid = client.get("/photos").get_data(as_text=True)
    assert grid.count('class="tile"') == 20
    assert "/media/" in grid and "thumb.webp" in grid and "thumb.jpg" in grid
    assert "wird verarbeitet" not in grid.lower()  # the immediate queue already made the thumbnails

    canon = results[-1]["photo_id"]
    page = client.get(f"/photos/{canon}").get_data(as_text=True)
    assert "preview.jpg" in page
    assert "Canon EOS 30D" in page
    assert "ISO" in page and "f/" in page
    assert "Aufgenommen" in page and "unbekannt" not in page.split("Aufgenommen")[1][:60]


def test_upload_results_page_names_each_refusal(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    response = upload(client, [(jpeg_bytes(), "gut.jpg"), (b"%PDF-1.4 hello", "scan.jpg"), (b"", "leer.jpg")],
                      json=False)
    assert response.status_code == 201
    text = response.get_data(as_text=True)
    assert "1 neu archiviert" in text and "2 abgelehnt" in text
    assert "kein Foto (PDF erkannt)" in text
    assert "leer" in text


def test_a_lone_refusal_keeps_its_status(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    response = upload(client, [(b"just text", "a.jpg")])
    assert response.status_code == 415
    assert response.get_json()["results"][0]["reason"]["code"] == "not_a_photo"
    english = client.post("/upload", data={"photos": [(io.BytesIO(b"just text"), "a.jpg")]},
                          content_type="multipart/form-data", headers={"Accept-Language": "en"})
    assert "This file is not a photo (Text detected)" in english.get_data(as_text=True)


def test_curators_must_choose_the_association(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "cora")
    assert upload(client, [(jpeg_bytes(), "a.jpg")]).status_code == 400
    response = upload(client, [(jpeg_bytes(), "a.jpg")], association="havering")
    assert response.status_code == 201
    photo = db.session.get(Photo, response.get_json()["results"][0]["photo_id"])
    assert photo.association.slug == "havering"


def test_members_cannot_upload_for_another_association(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    response = upload(client, [(jpeg_bytes(), "a.jpg")], association="lorient")
    photo = db.session.get(Photo, response.get_json()["results"][0]["photo_id"])
    assert photo.association.slug == "pasadena"


def test_who_sees_which_image(app: Flask, client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    photo_id = upload(client, [(jpeg_bytes(), "a.jpg")]).get_json()["results"][0]["photo_id"]
    thumb = f"/media/{photo_id}/thumb.jpg"
    own = client.get(thumb)
    assert own.status_code == 200 and own.mimetype == "image/jpeg"
    assert own.headers["Cache-Control"] == "private, no-cache"
    assert client.get(thumb, headers={"If-None-Match": own.headers["ETag"]}).status_code == 304
    assert client.get(f"/photos/{photo_id}/original").status_code == 200
    client.post("/logout")

    # Another association: unpublished means it does not exist for them; the same for visitors.
    login(client, "omar")
    for path in (thumb, f"/photos/{photo_id}", f"/photos/{photo_id}/original"):
        assert client.get(path).status_code == 404, path
    client.post("/logout")
    for path in (thumb, f"/photos/{photo_id}", f"/photos/{photo_id}/original"):
        assert client.get(path).status_code == 404, path

    # Published: visitors see the images (cacheable), never the original.
    db.session.get(Photo, photo_id).status = PhotoStatus.PUBLISHED
    db.session.commit()
    public = client.get(thumb)
    assert public.status_code == 200 and public.headers["Cache-Control"] == "public, no-cache"
    assert client.get(f"/media/{photo_id}/preview.webp").mimetype == "image/webp"
    assert client.get(f"/photos/{photo_id}/original").status_code == 404
    assert client.get(f"/media/{photo_id}/huge.jpg").status_code == 404

    login(client, "cora")
    original = client.get(f"/photos/{photo_id}/original")
    assert original.status_code == 200
    assert original.headers["Content-Disposition"].startswith("attachment;")
    assert original.data == jpeg_bytes()


def test_forms_need_a_csrf_token(tmp_path: Path) -> None:
    app = make_ready_app(settings_for(tmp_path / "csrf", WTF_CSRF_ENABLED=True))
    with app.app_context():
        from archive.auth import hash_password

        db.session.add(User(username="mia", password_hash=hash_password(PASSWORD)))
        db.session.commit()
        response = app.test_client().post("/login", data={"username": "mia", "password": PASSWORD})
        assert response.status_code == 400
        assert "CSRF" in response.get_data(as_text=True) or "unvollständig" in response.get_data(as_text=True)


def test_one_time_password_must_be_replaced(client: FlaskClient, people: dict[str, User]) -> None:
    user = db.session.scalar(select(User).where(User.username == "ada"))
    user.must_change_password = True
    db.session.commit()
    response = client.post("/login", data={"username": "ada", "password": PASSWORD})
    assert response.headers["Location"] == "/password"
    assert client.post("/password", data={"password": "short", "confirm": "short"}).status_code == 422
    response = client.post("/password", data={"password": "ein langes neues", "confirm": "ein langes neues"})
    assert response.status_code == 302
    db.session.refresh(user)
    assert not user.must_change_password
    assert user.session_version == 2
    client.post("/logout")
    assert client.post("/login", data={"username": "ada", "password": PASSWORD}).status_code == 401
    login(client, "ada", "ein langes neues")
    # From now on a change needs the current password.
    wrong = client.post("/password", data={"current": "falsch", "password": "noch ein neues",
                                           "confirm": "noch ein neues"})
    assert wrong.status_code == 422 and "bisherige Passwort stimmt nicht" in wrong.get_data(as_text=True)
    right = client.post("/password", data={"current": "ein langes neues", "password": "noch ein neues",
                                           "confirm": "noch ein neues"})
    assert right.status_code == 302


def test_home_page_shows_only_published_photos(client: FlaskClient, people: dict[str, User]) -> None:
    login(client, "mia")
    ids = [r["photo_id"] for r in upload(client, [(jpeg_bytes((9, 9, 9)), "a.jpg"),
                                                  (jpeg_bytes((90, 9, 9)), "b.jpg")]).get_json()["results"]]
    db.session.get(Photo, ids[0]).status = PhotoStatus.PUBLISHED
    db.session.commit()
    client.post("/logout")
    home = client.get("/").get_data(as_text=True)
    assert f"/photos/{ids[0]}" in home
    assert f"/photos/{ids[1]}" not in home


def test_a_file_that_failed_processing_can_be_removed_by_its_owner(app: Flask, client: FlaskClient,
                                                                  people: dict[str, User]) -> None:
    from archive.services import get_store

    login(client, "mia")
    ids = [r["photo_id"] for r in upload(client, [(jpeg_bytes((1, 1, 1)), "a.jpg"),
                                                  (jpeg_bytes((2, 2, 2)), "b.jpg")]).get_json()["results"]]
    failed = db.session.get(Photo, ids[0])
    failed.status = PhotoStatus.FAILED
    db.session.commit()
    keys = [failed.original_key, *(d.key for d in failed.derivatives)]
    assert "Datei entfernen" in client.get(f"/photos/{ids[0]}").get_data(as_text=True)
    assert "Datei entfernen" not in client.get(f"/photos/{ids[1]}").get_data(as_text=True)
    assert client.post(f"/photos/{ids[1]}/discard").status_code == 409  # a good photo stays
    client.post("/logout")
    login(client, "omar")
    assert client.post(f"/photos/{ids[0]}/discard").status_code == 404  # not theirs
    client.post("/logout")
    login(client, "mia")
    assert client.post(f"/photos/{ids[0]}/discard").status_code == 302
    db.session.expire_all()
    assert db.session.get(Photo, ids[0]) is None
    assert not any(get_store().exists(key) for key in keys)
    assert db.session.get(Photo, ids[1]) is not None


def test_a_locked_database_is_a_503_and_leaves_nothing(tmp_path: Path) -> None:
    from archive.auth import hash_password
    from archive.models import Association
    from archive.services import get_store
    from tests.conftest import IsolatedClient

    app = make_ready_app(settings_for(tmp_path / "locked", SQLITE_BUSY_TIMEOUT_MS=200, POSTGRES_LOCK_TIMEOUT_MS=200))
    app.test_client_class = IsolatedClient
    with app.app_context():
        pasadena = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
        db.session.add(User(username="mia", association_id=pasadena, password_hash=hash_password(PASSWORD)))
        db.session.commit()
        client = app.test_client()
        login(client, "mia")
        blocker = lock_for_writers(app)  # another process holds the write lock
        try:
            response = upload(client, [(jpeg_bytes(), "a.jpg")])
        finally:
            blocker.rollback()
            blocker.close()
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert response.get_json()["results"][0]["reason"]["code"] == "database_unavailable"
        assert db.session.scalar(select(Photo.id)) is None
        # The stored original belongs to nobody; it is left for reconcile (the same photo could be arriving
        # in another request under the same key), which removes it once it is old enough.
        from archive.reconcile import reconcile

        report = reconcile(db.session, get_store(), {**app.config, "STALE_MINUTES": 0}, lambda _id: None)
        assert len(report.removed_objects) == 1 and list(get_store().list("")) == []
        assert upload(client, [(jpeg_bytes(), "a.jpg")]).status_code == 201  # and it works again


def test_a_duplicate_of_another_associations_photo_reveals_nothing(client: FlaskClient,
                                                                   people: dict[str, User]) -> None:
    login(client, "mia")
    upload(client, [(jpeg_bytes((7, 7, 7)), "a.jpg")])
    client.post("/logout")
    login(client, "omar")
    result = upload(client, [(jpeg_bytes((7, 7, 7)), "copy.jpg")]).get_json()["results"][0]
    assert result == {"outcome": "duplicate", "filename": "copy.jpg", "photo_id": None}
    page = upload(client, [(jpeg_bytes((7, 7, 7)), "copy.jpg")], json=False).get_data(as_text=True)
    assert "von einem anderen Verein" in page and "/photos/" not in page.split("results")[1].split("</ul>")[0]


def test_upload_without_a_csrf_token_says_to_reload(tmp_path: Path) -> None:
    from archive.auth import hash_password
    from tests.conftest import IsolatedClient

    app = make_ready_app(settings_for(tmp_path / "csrf-upload", WTF_CSRF_ENABLED=True))
    app.test_client_class = IsolatedClient
    with app.app_context():
        db.session.add(User(username="ada", role="admin", password_hash=hash_password(PASSWORD)))
        db.session.commit()
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        assert client.post("/login", data={"username": "ada", "password": PASSWORD,
                                           "csrf_token": token}).status_code == 302
        response = upload(client, [(jpeg_bytes(), "a.jpg")], json=False, association="ruanda")
        assert response.status_code == 400
        assert "Seite neu" in response.get_data(as_text=True)
        assert db.session.scalar(select(Photo.id)) is None


def test_an_oversized_file_is_refused_and_its_neighbours_kept(app: Flask, client: FlaskClient,
                                                             people: dict[str, User]) -> None:
    app.config["MAX_UPLOAD_BYTES"] = 20_000
    login(client, "mia")
    big = jpeg_bytes((120, 20, 20), size=(1600, 1200), quality=100)
    assert len(big) > 20_000
    response = upload(client, [(jpeg_bytes((1, 50, 1)), "klein.jpg"), (big, "riesig.jpg")])
    assert response.status_code == 201
    outcomes = [(r["outcome"], r.get("reason", {}).get("code")) for r in response.get_json()["results"]]
    assert outcomes == [("archived", None), ("refused", "too_large")]
    assert list(Path(app.config["STAGING_DIR"]).iterdir()) == []


def test_uploaded_files_are_spooled_into_the_staging_folder(app: Flask) -> None:
    from archive.upload_stream import StagingRequest

    with app.test_request_context():
        stream = StagingRequest({})._get_file_stream(None, "image/jpeg", "a.jpg")
        try:
            stream.write(b"x" * (app.config["MAX_UPLOAD_BYTES"] + 10))
            stream.seek(0, 2)
            assert stream.tell() == app.config["MAX_UPLOAD_BYTES"] + 1  # the rest was not kept
            assert Path(f"/proc/self/fd/{stream.fileno()}").resolve().parent == Path(app.config["STAGING_DIR"])
        finally:
            stream.close()


def test_every_page_carries_the_security_headers(client: FlaskClient, people: dict[str, User]) -> None:
    for path in ("/", "/login", "/photos/999"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in headers  # only over TLS
    assert "Strict-Transport-Security" in client.get("/", base_url="https://localhost").headers


def test_a_database_that_is_gone_is_a_503_even_for_people_logged_in(tmp_path: Path) -> None:
    from archive.auth import hash_password
    from tests.conftest import IsolatedClient

    app = make_ready_app(settings_for(tmp_path / "gone"))
    app.test_client_class = IsolatedClient
    with app.app_context():
        db.session.add(User(username="ada", role="admin", password_hash=hash_password(PASSWORD)))
        db.session.commit()
        client = app.test_client()
        login(client, "ada")
        db.session.remove()
        db.engine.dispose()
        make_the_database_disappear(app)  # the disk went away, or the database was dropped
        for path in ("/photos", "/", "/photos/1"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert "Datenbank" in response.get_data(as_text=True)
