"""Search wired to the archive: the outbox feeds the index, visitors see only what is published,
`brucken reindex` and `brucken search-check` repair and compare, a lost index is a clear 503."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from archive.indexing import compare
from archive.ingest import Ingest
from archive.models import Association, OutboxEvent, Photo, PhotoStatus, db
from archive.services import get_jobs, get_search_index, get_store
from tests.conftest import jpeg_bytes, login, recorded_statements


def archive_photo(app: Flask, caption: str, slug: str = "pasadena", color: tuple[int, int, int] = (9, 9, 9)) -> int:
    association = db.session.scalar(select(Association).where(Association.slug == slug))
    result = Ingest(db.session, get_store(), app.config, get_jobs().enqueue_processing).ingest(
        io.BytesIO(jpeg_bytes(color)), "foto.jpg", association, uploader=None)
    photo = db.session.get(Photo, result.photo_id)
    photo.caption = caption
    db.session.add(OutboxEvent(topic="photo.changed", photo_id=photo.id))
    db.session.commit()
    get_jobs().outbox_changed()
    return photo.id


def publish(photo_id: int) -> None:
    db.session.get(Photo, photo_id).status = PhotoStatus.PUBLISHED
    db.session.add(OutboxEvent(topic="photo.changed", photo_id=photo_id))
    db.session.commit()
    get_jobs().outbox_changed()


def search_ids(client: FlaskClient, **params: Any) -> list[int]:
    response = client.get("/api/v1/search", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [hit["id"] for hit in response.get_json()["hits"]]


def test_visitors_find_only_published_photos(app: Flask, client: FlaskClient, people: dict[str, Any]) -> None:
    hidden = archive_photo(app, "Die Brücke über den Rhein bei Nacht", color=(1, 1, 1))
    shown = archive_photo(app, "Die Brücke über den Rhein am Morgen", color=(2, 2, 2))
    publish(shown)
    assert search_ids(client, q="Bruecke") == [shown]
    body = client.get("/api/v1/search", query_string={"q": "Nacht"}).get_json()
    assert body["total"] == 0 and "Nacht" not in str(body)  # nothing of the unpublished photo leaks
    login(client, "cora")
    assert sorted(search_ids(client, q="Brücke")) == sorted([hidden, shown])
    client.post("/logout")
    login(client, "mia")  # the owning association sees its own unpublished photo
    assert sorted(search_ids(client, q="BRÜCKE")) == sorted([hidden, shown])
    client.post("/logout")
    login(client, "omar")  # another association does not
    assert search_ids(client, q="brücken") == [shown]


def test_the_api_answers_in_the_documented_shape(app: Flask, client: FlaskClient) -> None:
    photo_id = archive_photo(app, "Rheinbrücke im Schnee")
    publish(photo_id)
    body = client.get("/api/v1/search", query_string={"q": "Schnee", "association": "pasadena"}).get_json()
    assert body["total"] == 1
    hit = body["hits"][0]
    assert set(hit) == {"id", "title", "caption", "snippet", "thumbnail", "url"}
    assert hit["thumbnail"].endswith(f"/media/{photo_id}/thumb.jpg") and hit["url"].endswith(f"/photos/{photo_id}")
    assert "<mark>" in hit["snippet"]
    assert body["facets"]["association"] == {"pasadena": 1}


def test_the_search_page_shows_hits_facets_and_help(app: Flask, client: FlaskClient) -> None:
    photo_id = archive_photo(app, "Konrad-Adenauer-Brücke im Nebel")
    publish(photo_id)
    page = client.get("/search", query_string={"q": "Nebel"}).get_data(as_text=True)
    assert f"/photos/{photo_id}" in page and "1 Treffer" in page
    assert "Freundeskreis Ludwigshafen-Pasadena" in page  # the facet shows the association's name
    assert "jahr:2019..2023" in page  # the syntax help


def test_discarding_a_photo_removes_it_from_search(app: Flask, client: FlaskClient, people: dict[str, Any]) -> None:
    photo_id = archive_photo(app, "Kaputtes Bild einer Brücke")
    db.session.get(Photo, photo_id).status = PhotoStatus.FAILED
    db.session.commit()
    login(client, "mia")
    assert search_ids(client, q="Kaputtes") == [photo_id]
    assert client.post(f"/photos/{photo_id}/discard").status_code == 302
    assert search_ids(client, q="Kaputtes") == []


def test_a_lost_index_is_a_503_until_reindex(app: Flask, client: FlaskClient) -> None:
    photo_id = archive_photo(app, "Brücke der Freundschaft")
    publish(photo_id)
    shutil.rmtree(app.config["INDEX_DIR"])
    app.extensions.pop("brucken.search", None)
    page = client.get("/search", query_string={"q": "Freundschaft"})
    assert page.status_code == 503 and "neu aufgebaut" in page.get_data(as_text=True)
    api = client.get("/api/v1/search", query_string={"q": "x"})
    assert api.status_code == 503 and api.headers["Retry-After"] == "60"
    assert api.get_json()["error"]["code"] == "search_unavailable"
    assert page.headers["Retry-After"] == "60"

    result = app.test_cli_runner().invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert "1 Foto(s)" in result.output
    app.extensions.pop("brucken.search", None)
    assert search_ids(client, q="Freundschaft") == [photo_id]


def test_search_check_finds_what_differs(app: Flask) -> None:
    photo_id = archive_photo(app, "Alte Brücke")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["search-check"]).exit_code == 0
    db.session.get(Photo, photo_id).caption = "Neue Brücke"  # changed without an outbox event
    db.session.commit()
    differences = compare(db.session, get_search_index())
    assert differences.stale == [photo_id] and not differences.missing and not differences.extra
    result = runner.invoke(args=["search-check"])
    assert result.exit_code == 1 and str(photo_id) in result.output
    assert runner.invoke(args=["reindex"]).exit_code == 0
    assert runner.invoke(args=["search-check"]).exit_code == 0


def test_index_rebuilt_from_the_database_gives_the_same_results(app: Flask, client: FlaskClient) -> None:
    ids = [archive_photo(app, f"Brücke Nummer {n} über den Rhein", color=(n * 40, 3, 3)) for n in range(5)]
    for photo_id in ids:
        publish(photo_id)
    queries = [{"q": "Rhein"}, {"q": "Brücke", "sort": "newest"}, {"q": "", "association": "pasadena"}]

    def answers() -> list[Any]:
        # Equal scores may come in any order: compare the hits as a set, and the facets and totals exactly.
        bodies = [client.get("/api/v1/search", query_string=q).get_json() for q in queries]
        return [(b["total"], b["facets"], sorted(h["id"] for h in b["hits"])) for b in bodies]

    before = answers()
    assert app.test_cli_runner().invoke(args=["reindex"]).exit_code == 0
    app.extensions.pop("brucken.search", None)
    assert answers() == before and before[0][0] == 5


def _many_photos(count: int) -> None:
    """Rows straight into the database (no images needed for search), each with its outbox event."""
    import hashlib
    import random

    rng = random.Random(7)
    slugs = ["pasadena", "lorient", "havering", "sumgait"]
    associations = {a.slug: a.id for a in db.session.scalars(select(Association))}
    words = ["Brücke", "Rhein", "Nacht", "bridge", "river", "Fähre", "Hafen", "sunset", "Steg", "Ufer"]
    for i in range(count):
        photo = Photo(association_id=associations[rng.choice(slugs)],
                      sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                      status=rng.choice([PhotoStatus.PUBLISHED, PhotoStatus.SUBMITTED]), original_key=f"originals/{i}",
                      format="jpeg", mime_type="image/jpeg", size_bytes=1, width=1, height=1,
                      caption=" ".join(rng.choices(words, k=6)))
        db.session.add(photo)
        db.session.flush()
        db.session.add(OutboxEvent(topic="photo.changed", photo_id=photo.id))
    db.session.commit()


def test_facet_counts_equal_the_database(app: Flask, client: FlaskClient) -> None:
    from collections import Counter

    _many_photos(300)
    get_jobs().outbox_changed()
    body = client.get("/api/v1/search", query_string={"q": "Rhein"}).get_json()
    published = db.session.scalars(select(Photo).where(Photo.status == PhotoStatus.PUBLISHED)
                                   .options(selectinload(Photo.association))).all()
    expected = Counter(p.association.slug for p in published if "Rhein" in p.caption.split())
    assert body["total"] == sum(expected.values()) > 0
    assert body["facets"]["association"] == dict(expected)


def test_a_writer_killed_mid_batch_is_repaired_by_the_outbox(app: Flask, tmp_path: Path) -> None:
    """SIGKILL the writer while it applies thousands of changes; the next run replays from the position
    the index recorded, and the index then agrees with the database."""
    import os
    import signal
    import subprocess
    import sys
    import time

    _many_photos(3000)
    get_search_index().create()  # an existing, empty index: the writer applies the outbox batch by batch
    settings = {k: app.config[k] for k in ("INSTANCE_DIR", "UPLOAD_DIR", "INDEX_DIR", "SECRET_KEY", "QUEUE",
                                           "DATABASE_URL", "TESTING")}
    code = (
        "from tests.conftest import make_ready_app\n"
        "from archive.models import db\n"
        "from archive.indexing import apply_outbox\n"
        "from archive.services import get_search_index\n"
        f"app = make_ready_app({settings!r})\n"
        "with app.app_context():\n"
        "    print('start', flush=True)\n"
        "    apply_outbox(db.session, get_search_index(), batch=100)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "start"
    index = get_search_index()
    deadline = time.monotonic() + 60
    while (not index.exists() or index.position() == 0) and time.monotonic() < deadline:
        time.sleep(0.05)  # let it commit at least one batch, then kill it in the middle of the next ones
    time.sleep(0.3)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert 0 < index.position() < 3000, "the writer should have been killed part-way"
    assert not compare(db.session, index).clean

    from archive.indexing import apply_outbox

    apply_outbox(db.session, index)  # the next run of the job
    assert compare(db.session, index).clean


def test_the_writer_rebuilds_a_lost_or_damaged_index_by_itself(app: Flask, client: FlaskClient) -> None:
    photo_id = archive_photo(app, "Brücke im Herbst")
    publish(photo_id)
    index_dir = Path(app.config["INDEX_DIR"])
    for path in index_dir.rglob("*.seg"):
        path.write_bytes(b"\0" * 64)  # damaged segments
    app.extensions.pop("brucken.search", None)
    assert client.get("/api/v1/search", query_string={"q": "Herbst"}).status_code == 503
    get_jobs().outbox_changed()  # the next run of the writer (it also runs every minute)
    app.extensions.pop("brucken.search", None)
    assert search_ids(client, q="Herbst") == [photo_id]


def test_curators_filter_by_status_on_the_page(app: Flask, client: FlaskClient, people: dict[str, Any]) -> None:
    shown = archive_photo(app, "Brücke am Abend", color=(50, 60, 70))
    waiting = archive_photo(app, "Brücke am Morgen", color=(70, 60, 50))
    publish(shown)
    login(client, "cora")
    page = client.get("/search", query_string={"q": "Brücke", "status": "published"}).get_data(as_text=True)
    assert f"/photos/{shown}" in page and f"/photos/{waiting}" not in page
    assert '<option value="published" selected>' in page
    everything = client.get("/search", query_string={"q": "Brücke", "status": ""}).get_data(as_text=True)
    assert f"/photos/{shown}" in everything and f"/photos/{waiting}" in everything
    client.post("/logout")
    assert 'name="status"' not in client.get("/search", query_string={"q": "Brücke"}).get_data(as_text=True)


def test_search_hides_changes_the_index_has_not_applied_yet_reading_only_newer_events(app: Flask) -> None:
    """``not_yet_hidden`` names the photos changed after the index's position that a visitor may no longer see,
    and reads only those newer events (SQLite walked the whole outbox on every anonymous search before)."""
    from sqlalchemy import func

    from archive.indexing import not_yet_hidden
    from archive.search import Viewer

    with app.app_context():
        unpublished, still_public, old = (archive_photo(app, f"Brücke {n}") for n in range(3))
        for photo_id in (unpublished, still_public, old):
            publish(photo_id)
        db.session.get(Photo, old).status = PhotoStatus.WITHDRAWN  # changed before the position: not asked about
        db.session.add(OutboxEvent(topic="photo.changed", photo_id=old))
        db.session.add_all(OutboxEvent(topic="settings.changed", photo_id=None) for _ in range(2000))
        db.session.commit()
        position = db.session.scalar(select(func.max(OutboxEvent.id)))
        db.session.get(Photo, unpublished).status = PhotoStatus.WITHDRAWN
        db.session.add_all([OutboxEvent(topic="photo.changed", photo_id=unpublished),
                            OutboxEvent(topic="photo.changed", photo_id=still_public),
                            OutboxEvent(topic="photo.deleted", photo_id=987654),  # a photo deleted since
                            OutboxEvent(topic="settings.changed", photo_id=None)])
        db.session.commit()

        with recorded_statements() as statements:
            assert not_yet_hidden(db.session, Viewer(), position) == {unpublished, 987654}
        assert not_yet_hidden(db.session, Viewer(sees_everything=False, association="pasadena"), position) == {987654}

        if db.engine.dialect.name == "sqlite":  # PostgreSQL plans by its statistics, which these few rows do not set
            raw = db.engine.raw_connection()
            try:
                plans = [row[3] for statement, parameters in statements
                         for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()]
            finally:
                raw.close()
            reads = [step for step in plans if " outbox " in f" {step} "]
            assert reads and all("PRIMARY KEY (rowid>?)" in step for step in reads), plans
