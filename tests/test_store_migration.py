"""`brucken move-to-s3`: a local archive moves to the real radosgw, verified, restartable; then runs on S3."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from archive.models import Exhibition, ExhibitionItem, Export, ExportStatus, Photo, db
from archive.storage import LocalStore, S3Store
from archive.store_migration import move_to_s3_command
from tests.conftest import IsolatedClient, login, make_ready_app, settings_for
from tests.photos import complete_bundle, publish, upload_one
from tests.servers.fixtures import admin_client
from tests.servers.radosgw import ExternalS3Server


def without_storage(s3_config: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in s3_config.items() if name != "STORAGE"}


@pytest.fixture
def app(tmp_path: Path, s3_config: dict[str, Any]) -> Iterator[Flask]:
    """A local archive (STORAGE=local) that already knows where its S3 bucket will be."""
    made = make_ready_app(settings_for(tmp_path, **without_storage(s3_config)))
    assert made.config["STORAGE"] == "local"
    made.test_client_class = IsolatedClient
    made.cli.add_command(move_to_s3_command)
    with made.app_context():
        yield made
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def archive(app: Flask, people: dict[str, Any]) -> dict[str, Any]:
    """Three processed photos (two published) and a finished print package, all in the local store."""
    member = app.test_client()
    login(member, "mia")
    ids = [upload_one(member, color) for color in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]
    for photo_id in ids[:2]:
        complete_bundle(photo_id, people["curator"])
        publish(photo_id, people["curator"])
    exhibition = Exhibition(slug="brunch", title="Brunch", created_by_id=people["curator"].id)
    db.session.add(exhibition)
    db.session.flush()
    db.session.add_all(ExhibitionItem(exhibition_id=exhibition.id, photo_id=i, position=n) for n, i in enumerate(ids))
    db.session.commit()
    curator = app.test_client()
    login(curator, "cora")
    made = curator.post(f"/curate/exhibitions/{exhibition.id}/exports", data={"kind": "zip", "language": "de"})
    assert made.status_code == 303
    export = db.session.scalar(select(Export))
    assert export is not None and export.status == ExportStatus.DONE and export.key
    return {"ids": ids, "export_id": export.id}


def move(app: Flask, *args: str) -> Result:
    result = app.test_cli_runner().invoke(args=["move-to-s3", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug, not a message: show its traceback
    return result


def local_store(app: Flask) -> LocalStore:
    return LocalStore(Path(app.config["LOCAL_STORE_DIR"]))


def s3_keys(s3_config: dict[str, Any]) -> dict[str, int]:
    return {info.key: info.size for info in S3Store.from_settings(s3_config).list()}


def raw_client(s3_config: dict[str, Any]) -> Any:
    return admin_client(ExternalS3Server(endpoint=s3_config["S3_ENDPOINT"], access_key=s3_config["S3_ACCESS_KEY"],
                                         secret_key=s3_config["S3_SECRET_KEY"]))


def test_the_archive_moves_to_s3_and_runs_there(app: Flask, archive: dict[str, Any], s3_config: dict[str, Any],
                                                tmp_path: Path) -> None:
    local = {info.key: info.size for info in local_store(app).list()}
    assert len(local) == 3 + 3 * 4 + 1  # originals, four images each, the export

    dry = move(app, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"{len(local)} Objekt(e) würden kopiert / would be copied" in dry.output
    assert s3_keys(s3_config) == {}  # a dry run copies nothing

    first = move(app)
    assert first.exit_code == 0, first.output
    assert f"{len(local)} Objekt(e) kopiert / copied" in first.output
    assert "ARCHIVE_STORAGE=s3" in first.output
    assert s3_keys(s3_config) == local  # every object, same size (and verified by checksum on the way)
    assert {info.key for info in local_store(app).list()} == set(local)  # the local copies stay

    again = move(app)
    assert again.exit_code == 0, again.output
    assert "0 Objekt(e) kopiert / copied" in again.output
    assert f"{len(local)} schon auf S3 und gleich / already on S3 and identical" in again.output

    # The same database, now with STORAGE=s3: pages, images, the original and the export come from S3.
    moved = make_ready_app(settings_for(tmp_path, **s3_config))
    moved.test_client_class = IsolatedClient
    with moved.app_context():
        photo = db.session.get(Photo, archive["ids"][0])
        visitor = moved.test_client()
        assert visitor.get(f"/photos/{photo.id}").status_code == 200
        thumb = visitor.get(f"/media/{photo.id}/thumb.webp")
        assert thumb.status_code == 200
        assert thumb.data == Path(app.config["LOCAL_STORE_DIR"], photo.derivative("thumb", "webp").key).read_bytes()
        member = moved.test_client()
        login(member, "mia")
        original = member.get(f"/photos/{photo.id}/original")
        assert original.status_code == 303
        with urllib.request.urlopen(original.headers["Location"], timeout=10) as signed:
            assert signed.read() == Path(app.config["LOCAL_STORE_DIR"], photo.original_key).read_bytes()
        curator = moved.test_client()
        login(curator, "cora")
        package = curator.get(f"/curate/exports/{archive['export_id']}/download")
        assert package.status_code == 303
        with urllib.request.urlopen(package.headers["Location"], timeout=10) as signed:
            assert signed.read()[:2] == b"PK"
        db.session.remove()
        db.engine.dispose()


def deny_one_key(s3_config: dict[str, Any], key: str) -> None:
    """A bucket policy on the real server that refuses writes of one object (as a full quota or a
    misconfigured policy would)."""
    bucket = s3_config["S3_BUCKET"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/{key}"}]}
    raw_client(s3_config).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def test_an_interrupted_move_says_what_is_missing_and_a_rerun_completes(
        app: Flask, archive: dict[str, Any], s3_config: dict[str, Any]) -> None:
    photo = db.session.get(Photo, archive["ids"][1])
    refused = photo.derivative("preview", "jpeg").key
    deny_one_key(s3_config, refused)

    broken = move(app)
    assert broken.exit_code != 0
    assert "Abgebrochen / stopped" in broken.output and refused in broken.output  # says which object, and why
    assert "AccessDenied" in broken.output
    assert "Noch nicht fertig" in broken.output and "ARCHIVE_STORAGE=s3" not in broken.output
    local = {info.key for info in local_store(app).list()}
    before = set(s3_keys(s3_config))
    assert refused not in before and before < local

    raw_client(s3_config).delete_bucket_policy(Bucket=s3_config["S3_BUCKET"])
    rerun = move(app)
    assert rerun.exit_code == 0, rerun.output
    assert f"{len(local - before)} Objekt(e) kopiert / copied" in rerun.output  # only what was missing
    assert f"{len(before)} schon auf S3 und gleich" in rerun.output
    assert set(s3_keys(s3_config)) == local


def test_a_damaged_or_missing_local_object_stops_the_switch(app: Flask, archive: dict[str, Any],
                                                          s3_config: dict[str, Any]) -> None:
    first, second = (db.session.get(Photo, i) for i in archive["ids"][:2])
    root = Path(app.config["LOCAL_STORE_DIR"])
    damaged = root / first.original_key
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    lost = second.derivative("thumb", "webp").key
    (root / lost).unlink()

    for args in ((), ("--dry-run",)):
        result = move(app, *args)
        assert result.exit_code != 0, result.output
        assert "Lokal beschädigt" in result.output and first.original_key in result.output
        assert f"{lost}: fehlt auf S3 / missing on S3 (auch lokal nicht / not in the local store either)" \
            in result.output
        assert "ARCHIVE_STORAGE=s3" not in result.output
    assert first.original_key not in s3_keys(s3_config)  # never copied under a key that would lie


def test_an_unreachable_s3_is_a_clear_message(app: Flask, archive: dict[str, Any]) -> None:
    app.config["S3_ENDPOINT"] = "http://127.0.0.1:9"
    app.config["S3_CONNECT_TIMEOUT"] = 1.0
    app.config["S3_MAX_ATTEMPTS"] = 1
    result = move(app)
    assert result.exit_code != 0
    assert "Abgebrochen: ein Speicher ist nicht erreichbar / stopped: a store cannot be used" in result.output
    assert "Traceback" not in result.output


def test_an_empty_archive_moves_too(app: Flask) -> None:
    result = move(app)
    assert result.exit_code == 0, result.output
    assert "0 Objekt(e) kopiert / copied" in result.output
    assert "ARCHIVE_STORAGE=s3" in result.output
