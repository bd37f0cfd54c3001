"""The job queue: jobs go through the real embedded SQLite queue and run in the worker's way."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from archive.ingest import Ingest
from archive.models import Association, Photo, PhotoStatus, db, utcnow
from archive.services import get_jobs, get_store
from tests.conftest import jpeg_bytes, make_ready_app, settings_for


def test_processing_goes_through_the_sqlite_queue(tmp_path: Path) -> None:
    app: Flask = make_ready_app(settings_for(tmp_path, QUEUE="sqlite"))
    with app.app_context():
        jobs = get_jobs()
        association = db.session.scalar(select(Association).where(Association.slug == "gaziantep"))
        result = Ingest(db.session, get_store(), app.config, jobs.enqueue_processing).ingest(
            io.BytesIO(jpeg_bytes()), "a.jpg", association, uploader=None)
        assert Path(app.config["QUEUE_PATH"]).exists()
        assert jobs.huey.pending_count() == 1
        assert db.session.get(Photo, result.photo_id).status == PhotoStatus.PROCESSING

        task = jobs.huey.dequeue()  # what the worker does, one step at a time
        jobs.huey.execute(task)
        db.session.expire_all()
        photo = db.session.get(Photo, result.photo_id)
        assert photo.status == PhotoStatus.SUBMITTED and len(photo.derivatives) == 4
        # Processing queued the search index writer, which brings the index up to the outbox.
        assert jobs.huey.pending_count() == 1
        jobs.huey.execute(jobs.huey.dequeue())
        assert jobs.huey.pending_count() == 0
        from archive.services import get_search_index

        assert get_search_index().stamps().keys() == {photo.id}


def test_the_worker_reconciles_every_quarter_hour(tmp_path: Path) -> None:
    app = make_ready_app(settings_for(tmp_path, QUEUE="sqlite"))
    with app.app_context():
        jobs = get_jobs()
        due = sorted(task.name for task in jobs.huey.read_periodic(datetime(2026, 11, 26, 12, 15)))
        assert due == ["apply_outbox_periodic", "reconcile"]
        assert [t.name for t in jobs.huey.read_periodic(datetime(2026, 11, 26, 12, 7))] == ["apply_outbox_periodic"]

        # A photo whose job was lost is queued again when the periodic job runs.
        association = db.session.scalar(select(Association).where(Association.slug == "gaziantep"))
        lost: list[int] = []
        photo_id = Ingest(db.session, get_store(), app.config, lost.append).ingest(
            io.BytesIO(jpeg_bytes()), "a.jpg", association, uploader=None).photo_id
        db.session.get(Photo, photo_id).created_at = utcnow().replace(year=2020)
        db.session.commit()
        reconcile = next(t for t in jobs.huey.read_periodic(datetime(2026, 11, 26, 12, 15)) if t.name == "reconcile")
        jobs.huey.execute(reconcile)
        assert jobs.huey.pending_count() == 1
