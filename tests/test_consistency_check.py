"""The checker the fault tests rely on must itself see every kind of disagreement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from archive.models import Photo, db
from archive.services import get_store
from tests.conftest import login
from tests.consistency import assert_consistent, problems
from tests.photos import upload_one


def test_a_clean_archive_passes_and_every_kind_of_damage_is_named(
        app: Flask, client: FlaskClient, people: dict[str, Any]) -> None:
    login(client, "mia")
    photo_id = upload_one(client)
    assert_consistent(app)

    store = get_store()
    photo = db.session.get(Photo, photo_id)
    derivative = photo.derivatives[0].key
    store.delete(derivative)
    store.put_bytes("originals/ff/ff/" + "f" * 64, b"nobody's", "image/jpeg")
    staging = Path(app.config["STAGING_DIR"])
    (staging / "upload-left.part").write_bytes(b"half")
    (staging / "7").mkdir()
    (staging / "7" / "ab.json").write_text('{"result": {"outcome": "archived"}}')  # kept on purpose for a while
    (staging / "7" / "ab.lock").touch()
    (staging / "7" / "cd.json").write_text('{"result": null}')
    found = problems(app)
    assert f"I1: photo {photo_id}: derivative {derivative} is missing" in found
    assert "I3: object originals/ff/ff/" + "f" * 64 + " belongs to no row" in found
    assert "I5: file left on the staging disk: upload-left.part" in found
    assert [p for p in found if "staging disk: 7/" in p] == ["I5: file left on the staging disk: 7/cd.json"]
    assert not [p for p in problems(app, orphans_allowed=True) if p.startswith("I3")]

    store.delete(photo.original_key)
    assert f"I1: photo {photo_id} ({photo.status}) has no original {photo.original_key}" in problems(app)
