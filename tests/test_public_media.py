"""Public copies for a CDN (MEDIA_CDN_URL), against the real radosgw: only published photos' thumbnails and
previews become readable by anyone, at keys nobody can guess; they go away when the photo stops being public.

The CDN here is the radosgw itself: MEDIA_CDN_URL = endpoint/bucket/public, read with plain anonymous HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select, text

from archive import public_media, workflow
from archive.models import ConsentScope, OutboxCursor, OutboxEvent, PeopleShown, Photo, db, utcnow
from archive.public_media import public_url, resync_all, sync_public_media
from archive.reconcile import discard_photo
from archive.services import get_store
from archive.storage import S3Store
from tests.conftest import IsolatedClient, login, make_ready_app, settings_for
from tests.photos import complete_bundle, publish, upload_one


def cdn_settings(s3_config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    base = f"{s3_config['S3_ENDPOINT']}/{s3_config['S3_BUCKET']}/public"
    return {**s3_config, "MEDIA_CDN_URL": base, "S3_PUBLIC_PREFIX": "public/", **extra}


@pytest.fixture
def app(tmp_path: Path, s3_config: dict[str, Any]) -> Iterator[Flask]:
    """The archive on S3 with the CDN option on (this module's own ``app``: conftest's people/client use it)."""
    made = make_ready_app(settings_for(tmp_path, **cdn_settings(s3_config)))
    made.test_client_class = IsolatedClient
    with made.app_context():
        yield made
        db.session.remove()
        db.engine.dispose()


def sync(app: Flask) -> int:
    return sync_public_media(db.session, get_store(), app.config)


def anonymous(url: str) -> requests.Response:
    return requests.get(url, timeout=10)  # no credentials, no signature: what any browser or CDN does


def public_keys(app: Flask) -> list[str]:
    return [info.key for info in get_store().list("public/")]


def published_photo(app: Flask, people: dict[str, Any], color: tuple[int, int, int] = (200, 30, 30),
                    **bundle: Any) -> Photo:
    member = app.test_client()
    login(member, "mia")
    photo_id = upload_one(member, color)
    complete_bundle(photo_id, people["curator"], **bundle)
    return publish(photo_id, people["curator"])


def copy_urls(app: Flask, photo: Photo) -> dict[str, str]:
    return {f"{d.size}.{d.fmt}": public_url(app.config, d.key) or "" for d in photo.derivatives}


def test_published_images_are_served_from_the_cdn(app: Flask, people: dict[str, Any]) -> None:
    photo = published_photo(app, people)
    visitor = app.test_client()
    # Published, but the worker has not made the copies yet: the app streams the image, as without a CDN.
    before = visitor.get(f"/media/{photo.id}/thumb.webp")
    assert before.status_code == 200 and before.mimetype == "image/webp"

    assert sync(app) == 4  # thumb and preview, JPEG and WebP
    assert sync(app) == 0  # nothing changed: nothing to do

    store = get_store()
    for derivative in photo.derivatives:
        url = public_url(app.config, derivative.key)
        assert url is not None and url.startswith(app.config["MEDIA_CDN_URL"] + "/")
        assert photo.sha256 not in url and derivative.key not in url  # names nothing that can be guessed
        got = anonymous(url)
        assert got.status_code == 200
        assert got.content == b"".join(store.iter_chunks(derivative.key))
        assert got.headers["Content-Type"] == ("image/jpeg" if derivative.fmt == "jpeg" else "image/webp")
        assert got.headers["Cache-Control"] == "public, no-cache"  # MEDIA_MAX_AGE = 0: rechecked each time

    answer = visitor.get(f"/media/{photo.id}/preview.jpg")
    assert answer.status_code == 302
    assert answer.headers["Location"] == copy_urls(app, photo)["preview.jpeg"]
    assert answer.headers["Cache-Control"] == "public, no-cache"


def test_the_original_and_everything_private_stay_private(app: Flask, people: dict[str, Any],
                                                          s3_config: dict[str, Any]) -> None:
    photo = published_photo(app, people)
    member = app.test_client()
    login(member, "mia")
    unpublished_id = upload_one(member, (10, 200, 10))
    sync(app)
    assert len(public_keys(app)) == 4  # the published photo's four images, nothing of the unpublished one
    bucket_url = f"{s3_config['S3_ENDPOINT']}/{s3_config['S3_BUCKET']}"
    everything = [info for info in get_store().list()]
    private = [info for info in everything if not info.key.startswith("public/")]
    assert {photo.original_key, *(d.key for d in photo.derivatives)} <= {info.key for info in private}
    for info in private:  # originals, every derivative, the unpublished photo's images
        assert anonymous(f"{bucket_url}/{info.key}").status_code == 403, info.key
    assert anonymous(f"{bucket_url}/").status_code == 403  # and nobody may list the bucket
    original = next(info for info in everything if info.key == photo.original_key)
    assert all(info.etag != original.etag for info in everything if info.key.startswith("public/"))
    # The unpublished photo's images: streamed to its association only, never redirected.
    assert member.get(f"/media/{unpublished_id}/thumb.webp").status_code == 200
    assert app.test_client().get(f"/media/{unpublished_id}/thumb.webp").status_code == 404


def test_unpublishing_takes_the_copies_offline(app: Flask, people: dict[str, Any]) -> None:
    photo = published_photo(app, people)
    sync(app)
    urls = copy_urls(app, photo)
    assert all(anonymous(url).status_code == 200 for url in urls.values())

    workflow.transition(db.session, photo, "withdraw", people["curator"], "Falscher Ort")
    # The app stops at once (the route checks the status), the copies go with the next sync.
    assert app.test_client().get(f"/media/{photo.id}/thumb.webp").status_code == 404
    assert sync(app) == 4
    assert public_keys(app) == []
    assert all(anonymous(url).status_code in (403, 404) for url in urls.values())


def test_withdrawn_consent_takes_the_copies_offline(app: Flask, people: dict[str, Any]) -> None:
    member = app.test_client()
    login(member, "mia")
    photo_id = upload_one(member)
    photo = db.session.get(Photo, photo_id)
    consent = workflow.record_consent(db.session, photo, people["curator"], person="Lea Beispiel",
                                      given_on=date(2024, 5, 1), scopes=[ConsentScope.WEB])
    complete_bundle(photo_id, people["curator"], people=PeopleShown.CONSENT)
    publish(photo_id, people["curator"])
    sync(app)
    urls = copy_urls(app, photo)
    assert anonymous(urls["thumb.webp"]).status_code == 200

    workflow.withdraw_consent(db.session, photo, consent, people["member"], "Ich möchte das nicht mehr")
    assert sync(app) == 4
    assert all(anonymous(url).status_code in (403, 404) for url in urls.values())


def test_a_deleted_photo_loses_its_copies(app: Flask, people: dict[str, Any]) -> None:
    photo = published_photo(app, people)
    kept = published_photo(app, people, (0, 0, 250))
    sync(app)
    urls = copy_urls(app, photo)
    discard_photo(db.session, get_store(), photo, reason="test: removed")
    assert sync(app) == 4
    assert all(anonymous(url).status_code in (403, 404) for url in urls.values())
    assert all(anonymous(url).status_code == 200 for url in copy_urls(app, kept).values())


def test_remade_images_replace_their_copies(app: Flask, people: dict[str, Any]) -> None:
    from archive.processing import process_photo

    photo = published_photo(app, people)
    sync(app)
    before = set(public_keys(app))
    old_keys = {d.key for d in photo.derivatives}
    app.config["WEBP_QUALITY"] = 40  # other bytes, so other derivative keys
    process_photo(photo.id, db.session, get_store(), app.config, remake=True)
    db.session.refresh(photo)
    assert {d.key for d in photo.derivatives} != old_keys
    assert sync(app) >= 2  # the WebP copies: two new, two old removed
    after = set(public_keys(app))
    assert len(after) == 4 and after != before
    assert after == {public_media.public_key(app.config, d.key) for d in photo.derivatives}


def test_resync_all_repairs_anything(app: Flask, people: dict[str, Any]) -> None:
    photo = published_photo(app, people)
    sync(app)
    store = get_store()
    assert isinstance(store, S3Store)
    lost = public_media.public_key(app.config, photo.derivatives[0].key)
    assert lost is not None
    store.delete(lost)
    stray = "public/" + "0" * 20 + "/" + "1" * 32 + ".webp"  # a copy nobody wants any more
    store.put_bytes(stray, b"old", "image/webp")
    foreign = "public/README.txt"  # not a key this module makes: left alone
    store.put_bytes(foreign, b"hello", "text/plain")
    assert resync_all(db.session, store, app.config) == 2
    assert set(public_keys(app)) == {*(public_media.public_key(app.config, d.key) for d in photo.derivatives),
                                     foreign}


def test_switching_the_cdn_off_removes_every_copy(app: Flask, people: dict[str, Any]) -> None:
    photo = published_photo(app, people)
    sync(app)
    app.config["MEDIA_CDN_URL"] = ""
    assert public_url(app.config, photo.derivatives[0].key) is None
    assert app.test_client().get(f"/media/{photo.id}/thumb.webp").status_code == 200  # streamed again
    assert sync(app) == 4
    assert public_keys(app) == []
    assert db.session.get(OutboxCursor, public_media.CURSOR) is None
    assert sync(app) == 0  # off and clean: nothing to do, nothing asked of S3


def ids_continue_after_the_highest() -> None:
    """Rows inserted with their own ids do not move PostgreSQL's sequence: let the next event follow them."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT setval(pg_get_serial_sequence('outbox', 'id'), (SELECT max(id) FROM outbox))"))
        db.session.commit()


def test_the_cursor_waits_at_a_young_gap_in_the_outbox(app: Flask, people: dict[str, Any]) -> None:
    """An event id committed later than a higher one (PostgreSQL, two transactions) must not be skipped."""
    photo = published_photo(app, people)
    sync(app)
    cursor = db.session.get(OutboxCursor, public_media.CURSOR)
    start = cursor.position
    # Events start+2 and start+3 are committed; start+1 is still "in flight".
    db.session.add_all([OutboxEvent(id=start + 2, topic="photo.changed", photo_id=photo.id),
                        OutboxEvent(id=start + 3, topic="photo.changed", photo_id=photo.id)])
    db.session.commit()
    ids_continue_after_the_highest()
    sync(app)
    assert db.session.get(OutboxCursor, public_media.CURSOR).position == start  # waits before the gap
    workflow.transition(db.session, photo, "withdraw", people["curator"], "zurückgezogen")
    late = db.session.scalar(select(OutboxEvent).order_by(OutboxEvent.id.desc()))
    late.id = start + 1  # the late commit fills the gap, naming the withdrawn photo
    db.session.commit()
    assert sync(app) == 4  # taken offline although its event came "late"
    assert public_keys(app) == []
    # A gap older than the grace period was a rolled-back transaction: the cursor moves past it.
    db.session.add(OutboxEvent(id=start + 10, topic="photo.changed", photo_id=photo.id,
                               at=utcnow() - public_media.GAP_GRACE - timedelta(seconds=1)))
    db.session.commit()
    sync(app)
    assert db.session.get(OutboxCursor, public_media.CURSOR).position == start + 10


def test_public_url_is_none_without_the_cdn(tmp_path: Path) -> None:
    key = "derivatives/ab/" + "ab" * 32 + "/thumb-0123456789abcdef.webp"
    config = {"MEDIA_CDN_URL": "https://cdn.example.org/b", "STORAGE": "s3", "SECRET_KEY": "s",
              "S3_PUBLIC_PREFIX": "public/"}
    assert public_url({**config, "MEDIA_CDN_URL": ""}, key) is None
    assert public_url({**config, "STORAGE": "local"}, key) is None
    url = public_url(config, key)
    assert url is not None and url.startswith("https://cdn.example.org/b/") and url.endswith(".webp")
    assert public_url({**config, "SECRET_KEY": "other"}, key) != url  # the key is what makes it unguessable
    assert public_url(config, "originals/ab/cd/" + "ab" * 32) is None  # never an original
    for prefix in ("", "originals/", "derivatives"):
        with pytest.raises(Exception, match="S3_PUBLIC_PREFIX"):
            public_url({**config, "S3_PUBLIC_PREFIX": prefix}, key)


def test_the_job_worker_makes_and_removes_the_copies_when_a_curator_publishes_and_withdraws(
        app: Flask, people: dict[str, Any]) -> None:
    """No sync by hand: the status change through the page wakes the worker's follower (QUEUE=immediate here)."""
    member = app.test_client()
    login(member, "mia")
    photo_id = upload_one(member, (20, 90, 160))
    complete_bundle(photo_id, people["curator"])
    curator = app.test_client()
    login(curator, "cora")
    assert curator.post(f"/photos/{photo_id}/status", data={"action": "publish"}).status_code in (302, 303)
    photo = db.session.get(Photo, photo_id)
    urls = copy_urls(app, photo)
    assert len(urls) == 4 and all(anonymous(url).status_code == 200 for url in urls.values())
    withdrawn = curator.post(f"/photos/{photo_id}/status",
                             data={"action": "withdraw", "reason": "Bitte der Urheberin"})
    assert withdrawn.status_code in (302, 303)
    assert all(anonymous(url).status_code in (403, 404) for url in urls.values())
    assert public_keys(app) == []
