"""Failed jobs on the embedded SQLite queue: a job that keeps failing is retried with growing waits, lands once in
the failed list and on /admin/jobs, and an admin starts it again once the cause is fixed (the same job code as on
Redis: tests/test_jobs_redis.py). The job fails the real way: the local store's folder is gone (a disk not
mounted), so reading the original raises StorageUnavailable."""

from __future__ import annotations

import io
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from huey import Huey
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from archive import failed_jobs
from archive.auth import hash_password
from archive.ingest import Ingest
from archive.models import Association, AuditEvent, FailedJob, Photo, PhotoStatus, Role, User, db
from archive.reconcile import discard_photo, reconcile
from archive.services import get_jobs, get_store
from tests.conftest import PASSWORD, IsolatedClient, jpeg_bytes, login, make_ready_app, settings_for

RETRIES = 4
BASE_DELAY = 0.2
PLANNED_DELAYS = [0.2, 0.4, 0.8, 1.6]


def failing_app(tmp_path: Path, retries: int = RETRIES, **extra: Any) -> Flask:
    return make_ready_app(settings_for(tmp_path, QUEUE="sqlite", JOB_RETRIES=retries,
                                       JOB_RETRY_SECONDS=BASE_DELAY, **extra))


def add_people(app: Flask) -> None:
    with app.app_context():
        db.session.add_all([User(username=name, role=role, password_hash=hash_password(PASSWORD))
                            for name, role in (("ada", Role.ADMIN), ("cora", Role.CURATOR))])
        lorient = db.session.scalar(select(Association.id).where(Association.slug == "lorient"))
        db.session.add(User(username="mia", role=Role.MEMBER, association_id=lorient,
                            password_hash=hash_password(PASSWORD)))
        db.session.commit()


def client_of(app: Flask) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


def ingest_photo(app: Flask, enqueue: Callable[[int], None], color: tuple[int, int, int] = (10, 120, 200)) -> int:
    association = db.session.scalar(select(Association).where(Association.slug == "gaziantep"))
    result = Ingest(db.session, get_store(), app.config, enqueue).ingest(
        io.BytesIO(jpeg_bytes(color)), "bruecke.jpg", association, uploader=None)
    assert result.photo_id is not None
    return result.photo_id


@contextmanager
def store_unmounted(app: Flask) -> Iterator[None]:
    """The local store's folder is gone for a while, as when its disk is not mounted."""
    folder = Path(app.config["LOCAL_STORE_DIR"])
    away = folder.with_name(folder.name + "-unmounted")
    folder.rename(away)
    try:
        yield
    finally:
        away.rename(folder)


def play_consumer(huey: Huey, done: Callable[[], bool], timeout: float = 30.0) -> list[tuple[float, str]]:
    """What `brucken worker` does, in this process: move due retries from the schedule into the queue and run
    queued jobs, until ``done()``. Returns when each job started (monotonic seconds) and its name."""
    started: list[tuple[float, str]] = []
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"the jobs did not finish: {started}"
        for task in huey.read_schedule(huey._get_timestamp()):
            huey.enqueue(task)
        task = huey.dequeue()
        if task is None:
            time.sleep(0.01)
            continue
        started.append((time.monotonic(), task.name))
        huey.execute(task)
    return started


def open_entries() -> list[FailedJob]:
    db.session.expire_all()
    return list(db.session.scalars(select(FailedJob).where(FailedJob.retried_at.is_(None))))


def fail_photo_job(app: Flask, color: tuple[int, int, int] = (10, 120, 200)) -> tuple[int, list[tuple[float, str]],
                                                                                      list[float]]:
    """A photo whose processing fails on every try; returns its id, the job starts and the planned waits."""
    jobs = get_jobs()
    photo_id = ingest_photo(app, jobs.enqueue_processing, color)
    planned: list[float] = []

    def record_planned_wait(_signal: str, task: Any, *_args: Any) -> None:
        planned.append(task.retry_delay)  # the wait Huey schedules this retry with

    jobs.huey.signal("retrying")(record_planned_wait)
    with store_unmounted(app):
        started = play_consumer(jobs.huey, lambda: any(e.photo_id == photo_id for e in open_entries()))
    jobs.huey.disconnect_signal(record_planned_wait)
    return photo_id, started, planned


def test_a_failing_job_is_retried_with_growing_waits_then_listed_and_retried_by_an_admin(tmp_path: Path) -> None:
    app = failing_app(tmp_path)
    add_people(app)
    with app.app_context():
        jobs = get_jobs()
        photo_id, started, planned = fail_photo_job(app)

        # 1 try + 4 retries, each wait twice the one before, measured as well as planned.
        assert [name for _at, name in started] == ["process_photo"] * (RETRIES + 1)
        assert planned == pytest.approx(PLANNED_DELAYS)
        gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(started)]
        assert all(gap >= wait - 0.05 for gap, wait in zip(gaps, PLANNED_DELAYS, strict=True)), gaps
        assert gaps == sorted(gaps), gaps

        # Exactly one entry, nothing left in the queue or the schedule: the job is not tried a sixth time.
        entries = open_entries()
        assert len(entries) == 1
        entry = entries[0]
        assert (entry.task, json.loads(entry.args), entry.attempts) == ("process_photo", [photo_id], RETRIES + 1)
        assert entry.error.startswith("StorageUnavailable: local store folder") and len(entry.error) <= 300
        assert jobs.huey.pending_count() == 0 and jobs.huey.scheduled() == []
        photo = db.session.get(Photo, photo_id)
        assert photo.status == PhotoStatus.PROCESSING and photo.processing_attempts == RETRIES + 1

        client = client_of(app)
        login(client, "ada")
        page = client.get("/admin/jobs")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert f'href="/photos/{photo_id}"' in html and "StorageUnavailable" in html
        assert "Erneut versuchen" in html and "0 Aufträge warten" in html
        assert "1 gescheitert" in client.get("/admin").get_data(as_text=True)  # the overview links it

        # The disk is back: the admin starts the job again, the worker runs it, the photo is done.
        response = client.post(f"/admin/jobs/{entry.id}/retry")
        assert response.status_code == 302 and response.headers["Location"].endswith("/admin/jobs")
        assert jobs.huey.pending_count() == 1
        play_consumer(jobs.huey, lambda: jobs.huey.pending_count() == 0)
        db.session.expire_all()
        photo = db.session.get(Photo, photo_id)
        assert photo.status == PhotoStatus.SUBMITTED and len(photo.derivatives) == 4
        entry = db.session.get(FailedJob, entry.id)
        assert entry.retried_at is not None and open_entries() == []
        retried = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "job.retried")).all()
        assert [(e.photo_id, e.subject_id, e.actor.username) for e in retried] == [(photo_id, entry.id, "ada")]
        html = client.get("/admin/jobs").get_data(as_text=True)
        assert "Erneut gestartet am" in html and "Erneut versuchen" not in html

        # Started again already: a second press is refused in words, nothing queued.
        again = client.post(f"/admin/jobs/{entry.id}/retry")
        assert again.status_code == 409 and "schon erneut gestartet" in again.get_data(as_text=True)
        assert jobs.huey.pending_count() == 0


def test_only_admins_see_and_retry_failed_jobs(tmp_path: Path) -> None:
    app = failing_app(tmp_path, retries=0)  # no retries: the first failure is listed
    add_people(app)
    with app.app_context():
        jobs = get_jobs()
        fail_photo_job(app)
        entry = open_entries()[0]
        client = client_of(app)
        anonymous = client.get("/admin/jobs")
        assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
        assert client.post(f"/admin/jobs/{entry.id}/retry").status_code == 302
        for name in ("mia", "cora"):
            login(client, name)
            assert client.get("/admin/jobs").status_code == 403, name
            assert client.post(f"/admin/jobs/{entry.id}/retry").status_code == 403, name
            client.post("/logout")
        assert [e.id for e in open_entries()] == [entry.id] and jobs.huey.pending_count() == 0


def test_the_retry_button_needs_the_forms_csrf_token(tmp_path: Path) -> None:
    app = failing_app(tmp_path, retries=0, WTF_CSRF_ENABLED=True)
    add_people(app)
    with app.app_context():
        jobs = get_jobs()
        fail_photo_job(app)
        entry = open_entries()[0]
        client = client_of(app)
        login_page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page).group(1)
        client.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": token})
        assert client.post(f"/admin/jobs/{entry.id}/retry").status_code == 400
        assert open_entries() and jobs.huey.pending_count() == 0
        page = client.get("/admin/jobs").get_data(as_text=True)
        form = re.search(rf'action="/admin/jobs/{entry.id}/retry".*?name="csrf_token" value="([^"]+)"', page, re.S)
        assert client.post(f"/admin/jobs/{entry.id}/retry", data={"csrf_token": form.group(1)}).status_code == 302
        assert open_entries() == [] and jobs.huey.pending_count() == 1


def test_a_deleted_photo_is_answered_in_words_and_a_given_up_photo_is_processed_again(tmp_path: Path) -> None:
    app = failing_app(tmp_path)
    add_people(app)
    with app.app_context():
        jobs = get_jobs()
        gone_id, _started, _planned = fail_photo_job(app)
        kept_id, _started, _planned = fail_photo_job(app, (250, 200, 0))
        gone_entry, kept_entry = sorted(open_entries(), key=lambda e: e.id)
        assert gone_entry.photo_id == gone_id and kept_entry.photo_id == kept_id
        discard_photo(db.session, get_store(), db.session.get(Photo, gone_id), reason="test: deleted")
        # Half an hour later reconcile gives up on the photo that failed five times (archive/reconcile.py).
        app.config["STALE_MINUTES"] = 0
        report = reconcile(db.session, get_store(), app.config, jobs.enqueue_processing)
        assert report.gave_up == [kept_id]
        assert db.session.get(Photo, kept_id).status == PhotoStatus.FAILED

        client = client_of(app)
        login(client, "ada")
        html = client.get("/admin/jobs").get_data(as_text=True)
        assert f"Foto Nr. {gone_id} (gelöscht)" in html and f'href="/photos/{gone_id}"' not in html
        refused = client.post(f"/admin/jobs/{gone_entry.id}/retry")
        assert refused.status_code == 409
        assert f"Das Foto Nr. {gone_id} gibt es nicht mehr" in refused.get_data(as_text=True)
        assert jobs.huey.pending_count() == 0 and db.session.get(FailedJob, gone_entry.id).retried_at is None

        assert client.post(f"/admin/jobs/{kept_entry.id}/retry").status_code == 302
        play_consumer(jobs.huey, lambda: jobs.huey.pending_count() == 0)
        db.session.expire_all()
        photo = db.session.get(Photo, kept_id)
        assert photo.status == PhotoStatus.SUBMITTED and len(photo.derivatives) == 4 and not photo.processing_error


def test_a_job_failing_again_and_again_stays_one_entry_until_it_is_started_again(app: Flask) -> None:
    failed_jobs.record(db.session, "apply_outbox", [], "IndexBusy: locked", attempts=5)
    failed_jobs.record(db.session, "apply_outbox", [], "OSError: disk full", attempts=5)
    failed_jobs.record(db.session, "process_photo", [7], "StorageUnavailable: down", attempts=5)
    entries = failed_jobs.list_failed(db.session)
    assert [(e.task, e.attempts, e.error) for e in entries] == [
        ("process_photo", 5, "StorageUnavailable: down"), ("apply_outbox", 10, "OSError: disk full")]
    assert failed_jobs.count_open(db.session) == 2

    failed_jobs.retry(db.session, get_jobs(), None, entries[1].id)  # the immediate queue runs it at once
    failed_jobs.record(db.session, "apply_outbox", [], "OSError: disk full", attempts=5)
    assert [(e.task, e.retried_at is None) for e in failed_jobs.list_failed(db.session)] == [
        ("apply_outbox", True), ("process_photo", True), ("apply_outbox", False)]


def test_the_error_shown_leaves_out_statements_data_and_passwords() -> None:
    database = OperationalError("INSERT INTO photos (title) VALUES (?)", ("Oma Ayşe am Rhein",),
                                Exception("database is locked"))
    assert failed_jobs.describe_error(database) == "OperationalError: database is locked"
    redis_down = ConnectionError("Error connecting to redis://worker:s3cret@10.0.0.5:6379/0.\nmore")
    assert failed_jobs.describe_error(redis_down) == "ConnectionError: Error connecting to redis://***@10.0.0.5:6379/0."
    assert len(failed_jobs.describe_error(RuntimeError("x" * 1000))) == 300


def test_retry_delays_double_from_the_configured_wait() -> None:
    from archive.jobs import retry_delay

    assert [retry_delay(10, attempt) for attempt in (1, 2, 3, 4)] == [10, 20, 40, 80]
