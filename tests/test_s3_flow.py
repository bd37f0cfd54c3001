"""Everything a user does works the same with originals and derivatives on a real S3 server."""

from __future__ import annotations

import io
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from archive.media import metadata_markers
from archive.models import Photo, PhotoStatus, db
from archive.services import get_store
from tests.conftest import IsolatedClient, jpeg_bytes, login, make_ready_app, settings_for
from tests.servers.fixtures import admin_client


@pytest.fixture
def s3_app(tmp_path: Path, s3_config: dict[str, Any]) -> Any:
    app = make_ready_app(settings_for(tmp_path, **s3_config))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def add_member(username: str = "mia") -> None:
    from archive.auth import hash_password
    from archive.models import Association, User

    association = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    db.session.add(User(username=username, association_id=association, password_hash=hash_password("pw-123456789")))
    db.session.commit()


def test_upload_process_and_serve_through_s3(s3_app: Flask, s3_config: dict[str, Any], corpus: Path) -> None:
    add_member()
    client = s3_app.test_client()
    login(client, "mia", "pw-123456789")
    camera = (corpus / "cameras/jpg/Nikon D40.jpg").read_bytes()
    files = [(io.BytesIO(camera), "nikon.jpg"), (io.BytesIO(jpeg_bytes()), "rot.jpg")]
    response = client.post("/upload", data={"photos": files}, content_type="multipart/form-data",
                           headers={"Accept": "application/json"})
    assert response.status_code == 201
    ids = [r["photo_id"] for r in response.get_json()["results"]]
    photo = db.session.get(Photo, ids[0])
    assert photo.status == PhotoStatus.SUBMITTED

    raw = admin_client_for(s3_config)
    stored = raw.get_object(Bucket=s3_config["S3_BUCKET"], Key=photo.original_key)["Body"].read()
    assert stored == camera  # byte for byte
    keys = {o["Key"] for o in raw.list_objects_v2(Bucket=s3_config["S3_BUCKET"])["Contents"]}
    assert {d.key for d in photo.derivatives} <= keys

    thumb = client.get(f"/media/{photo.id}/thumb.webp")
    assert thumb.status_code == 200 and metadata_markers(thumb.data) == []

    # The original: a short-lived signed link, as an attachment; the bucket itself answers no one else.
    original = client.get(f"/photos/{photo.id}/original")
    assert original.status_code == 303
    with urllib.request.urlopen(original.headers["Location"], timeout=10) as signed:
        assert signed.read() == camera
        assert signed.headers["Content-Disposition"].startswith("attachment")
    anonymous = f"{s3_config['S3_ENDPOINT']}/{s3_config['S3_BUCKET']}/{photo.original_key}"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(anonymous, timeout=10)
    assert denied.value.code == 403
    denied.value.close()


def admin_client_for(s3_config: dict[str, Any]) -> Any:
    from tests.servers.radosgw import ExternalS3Server

    server = ExternalS3Server(endpoint=s3_config["S3_ENDPOINT"], access_key=s3_config["S3_ACCESS_KEY"],
                      secret_key=s3_config["S3_SECRET_KEY"])
    return admin_client(server)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_s3_down_during_an_upload_is_a_clear_503(tmp_path: Path, s3_config: dict[str, Any]) -> None:
    down = {**s3_config, "S3_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "S3_CONNECT_TIMEOUT": 1.0,
            "S3_MAX_ATTEMPTS": 1}
    app = make_ready_app(settings_for(tmp_path, **down))
    app.test_client_class = IsolatedClient
    with app.app_context():
        add_member()
        client = app.test_client()
        login(client, "mia", "pw-123456789")
        response = client.post("/upload", data={"photos": [(io.BytesIO(jpeg_bytes()), "a.jpg")]},
                               content_type="multipart/form-data", headers={"Accept": "application/json"})
        assert response.status_code == 503
        assert response.get_json()["results"][0]["reason"]["code"] == "storage_unavailable"
        assert db.session.scalar(select(func.count(Photo.id))) == 0
        assert list(Path(app.config["STAGING_DIR"]).iterdir()) == []
        html = client.post("/upload", data={"photos": [(io.BytesIO(jpeg_bytes()), "a.jpg")]},
                           content_type="multipart/form-data")
        assert html.status_code == 503
        assert html.headers["Retry-After"]
        assert "nicht erreichbar" in html.get_data(as_text=True)


def test_init_makes_the_bucket(tmp_path: Path, s3_config: dict[str, Any]) -> None:
    raw = admin_client_for(s3_config)
    raw.delete_bucket(Bucket=s3_config["S3_BUCKET"])
    app = make_ready_app(settings_for(tmp_path, **s3_config))
    with app.app_context():  # the CLI uses whatever app context is active: this archive's
        result = app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert "Speicher bereit" in result.output
    with app.app_context():
        get_store().put_bytes("probe", b"x", "text/plain")
        assert get_store().exists("probe")


def test_an_upload_damaged_on_its_way_to_s3_says_so_and_the_same_upload_again_goes_through(
        s3_app: Flask, s3_config: dict[str, Any]) -> None:
    from tests.test_s3_scale import FlipOneByte

    add_member()
    client = s3_app.test_client()
    login(client, "mia", "pw-123456789")
    photo = jpeg_bytes((10, 120, 200))
    flip = FlipOneByte()  # one byte changed after the MD5 was taken: radosgw refuses the body
    get_store().client.meta.events.register("before-sign.s3.PutObject", flip)
    response = client.post("/upload", data={"photos": [(io.BytesIO(photo), "brücke.jpg")]},
                           content_type="multipart/form-data", headers={"Accept": "application/json"})
    get_store().client.meta.events.unregister("before-sign.s3.PutObject", flip)
    assert flip.flipped >= 1
    assert response.status_code == 503
    reason = response.get_json()["results"][0]["reason"]
    assert reason["code"] == "storage_damaged"
    assert "beschädigt" in reason["de"] and "damaged on its way" in reason["en"]
    assert db.session.scalar(select(func.count(Photo.id))) == 0
    assert list(Path(s3_app.config["STAGING_DIR"]).iterdir()) == []
    raw = admin_client_for(s3_config)
    assert raw.list_objects_v2(Bucket=s3_config["S3_BUCKET"]).get("KeyCount", 0) == 0

    again = client.post("/upload", data={"photos": [(io.BytesIO(photo), "brücke.jpg")]},
                        content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert again.status_code == 201 and again.get_json()["results"][0]["outcome"] == "archived"
