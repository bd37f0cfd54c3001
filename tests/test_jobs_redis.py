"""Jobs on a real redis-server (QUEUE=redis): three `brucken worker` processes share one queue and one SQLite
database, as worker hosts would; each photo is processed exactly once and the work is spread over the processes;
a job that keeps failing is retried with growing waits, lands once in the failed list and on /admin/jobs, and an
admin's retry finishes it once the cause is fixed. The job code is the one the embedded queue runs
(tests/test_failed_jobs.py).

The workers are `python -m archive worker` with Python's logging switched on (Huey logs each job it executes, with
the process id), so that the test can tell which process did which job; they are stopped by their pid.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from archive.auth import hash_password
from archive.ingest import Ingest
from archive.jobs import Jobs, make_huey
from archive.models import Association, AuditEvent, Derivative, FailedJob, Photo, PhotoStatus, Role, User, db
from archive.services import get_jobs, get_search_index, get_store
from tests.conftest import PASSWORD, IsolatedClient, jpeg_bytes, login, make_ready_app, settings_for
from tests.consistency import assert_consistent
from tests.servers.database import database_env

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3
PHOTOS = 12
RETRIES = 3
# An int: settings from the environment take the default's type. Huey's scheduler looks for due retries once a
# second, so a wait may come out up to a second longer: 2, 4, 8 s still grow for certain.
RETRY_SECONDS = 2
# `python -m archive worker`, plus a log line for each job with the time and the process id.
WORKER_MAIN = ("import logging, sys; logging.basicConfig(level=logging.INFO, "
               "format='%(created).3f pid=%(process)d %(name)s %(message)s'); "
               "sys.argv = ['brucken', 'worker']; from archive.cli import main; main()")
EXECUTED = re.compile(r"pid=(\d+) huey Executing archive\.jobs\.(\w+):")


def redis_app(tmp_path: Path, redis_url: str, **extra: Any) -> Flask:
    return make_ready_app(settings_for(tmp_path, QUEUE="redis", REDIS_URL=redis_url, JOB_RETRIES=RETRIES,
                                       JOB_RETRY_SECONDS=RETRY_SECONDS, **extra))


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def workers(tmp_path: Path, redis_url: str, count: int = WORKERS) -> Iterator[list[Worker]]:
    """``count`` worker processes on the test's folders (one SQLite file) and Redis; stopped by pid at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")}
    env.update(ARCHIVE_INSTANCE_DIR=str(tmp_path / "instance"), ARCHIVE_UPLOAD_DIR=str(tmp_path / "uploads"),
               ARCHIVE_INDEX_DIR=str(tmp_path / "index"), ARCHIVE_QUEUE="redis",
               ARCHIVE_REDIS_URL=redis_url, ARCHIVE_WORKER_THREADS="2", ARCHIVE_JOB_RETRIES=str(RETRIES),
               ARCHIVE_JOB_RETRY_SECONDS=str(RETRY_SECONDS), PYTHONUNBUFFERED="1",
               **database_env(tmp_path / "instance"))
    started: list[Worker] = []
    try:
        for number in range(count):
            log = tmp_path / f"worker-{number}.log"
            with log.open("wb") as out:
                process = subprocess.Popen([sys.executable, "-c", WORKER_MAIN], env=env, cwd=ROOT, stdout=out,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            started.append(Worker(process, log))
        wait_for(lambda: all("Worker läuft" in w.output() or w.process.poll() is not None for w in started), 60,
                 "the workers did not start")
        for worker in started:
            assert worker.process.poll() is None, f"a worker ended on start:\n{worker.output()}"
        yield started
    finally:
        for worker in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid, signal.SIGTERM)
        for worker in started:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(worker.process.pid, signal.SIGKILL)
                worker.process.wait(timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def ingest(app: Flask, enqueue: Callable[[int], None], color: tuple[int, int, int]) -> int:
    association = db.session.scalar(select(Association).where(Association.slug == "gaziantep"))
    result = Ingest(db.session, get_store(), app.config, enqueue).ingest(
        io.BytesIO(jpeg_bytes(color)), f"bruecke-{color[0]}-{color[1]}.jpg", association, uploader=None)
    assert result.photo_id is not None, result
    return result.photo_id


def statuses(ids: list[int]) -> list[PhotoStatus]:
    db.session.expire_all()
    return list(db.session.scalars(select(Photo.status).where(Photo.id.in_(ids))))


@pytest.mark.slow
def test_three_workers_share_the_queue_and_process_each_photo_once(tmp_path: Path, redis_url: str) -> None:
    app = redis_app(tmp_path, redis_url)
    with app.app_context(), workers(tmp_path, redis_url) as running:
        jobs = get_jobs()
        ids = [ingest(app, jobs.enqueue_processing, (20 * n, 255 - 20 * n, 90)) for n in range(PHOTOS)]
        began = time.monotonic()
        wait_for(lambda: statuses(ids) == [PhotoStatus.SUBMITTED] * PHOTOS, 180, "the photos were not processed")
        took = time.monotonic() - began
        wait_for(lambda: jobs.huey.pending_count() == 0, 30, "the queue did not empty")
        logs = [worker.output() for worker in running]

    with app.app_context():
        # Exactly once: one attempt, one 'processed' entry and one set of derivatives per photo.
        attempts = dict(db.session.execute(select(Photo.id, Photo.processing_attempts).where(Photo.id.in_(ids))).all())
        assert attempts == dict.fromkeys(ids, 1)
        processed = collections.Counter(db.session.scalars(
            select(AuditEvent.photo_id).where(AuditEvent.action == "photo.processed")))
        assert processed == dict.fromkeys(ids, 1)
        derivatives = dict(db.session.execute(select(Derivative.photo_id, func.count()).group_by(Derivative.photo_id)
                                              ).all())
        assert derivatives == dict.fromkeys(ids, 4)
        assert db.session.scalar(select(func.count()).select_from(FailedJob)) == 0
        db.session.remove()
    # ... and by more than one process: Huey logged each execution with the worker's pid.
    runs = collections.Counter(pid for text in logs for pid, task in EXECUTED.findall(text) if task == "process_photo")
    assert sum(runs.values()) == PHOTOS, runs
    assert len(runs) >= 2, f"all jobs ran in one process: {runs}"
    assert set(runs) <= {str(worker.process.pid) for worker in running}
    print(f"\n{PHOTOS} photos by {WORKERS} workers in {took:.1f} s; jobs per process: {sorted(runs.values())}")
    assert_consistent(app)


def open_entry(photo_id: int) -> FailedJob | None:
    db.session.expire_all()
    return db.session.scalar(select(FailedJob).where(FailedJob.args == f"[{photo_id}]",
                                                     FailedJob.retried_at.is_(None)))


@pytest.mark.slow
def test_a_failing_job_backs_off_lands_in_the_failed_list_and_an_admin_retries_it(tmp_path: Path,
                                                                                 redis_url: str) -> None:
    app = redis_app(tmp_path, redis_url)
    with app.app_context():
        db.session.add(User(username="ada", role=Role.ADMIN, password_hash=hash_password(PASSWORD)))
        db.session.commit()
    store = Path(app.config["LOCAL_STORE_DIR"])
    away = store.with_name("store-unmounted")
    app.test_client_class = IsolatedClient
    client = app.test_client()
    with app.app_context(), workers(tmp_path, redis_url):
        jobs = get_jobs()
        photo_id = ingest(app, lambda _id: None, (5, 80, 160))
        store.rename(away)  # the store's disk is gone (it is there while the workers start: they create it)
        jobs.enqueue_processing(photo_id)

        # Watch the photo's attempts (each try counts itself in the database before it reads the original).
        seen: dict[int, float] = {}
        deadline = time.monotonic() + 60
        while True:
            count = db.session.scalar(select(Photo.processing_attempts).where(Photo.id == photo_id))
            seen.setdefault(count, time.monotonic())
            if open_entry(photo_id) is not None:
                break
            assert time.monotonic() < deadline, f"no failed entry; attempts seen at {seen}"
            time.sleep(0.02)
        # The last try may have counted itself and failed between two looks: one more look, a few ms late at most.
        seen.setdefault(db.session.scalar(select(Photo.processing_attempts).where(Photo.id == photo_id)),
                        time.monotonic())
        seen.pop(0, None)
        assert sorted(seen) == list(range(1, RETRIES + 2)), seen
        gaps = [later - earlier for earlier, later in itertools.pairwise(seen[n] for n in sorted(seen))]
        planned = [RETRY_SECONDS * 2 ** n for n in range(RETRIES)]  # 2, 4, 8 s
        assert all(gap >= wait - 0.1 for gap, wait in zip(gaps, planned, strict=True)), (gaps, planned)
        assert gaps[0] < gaps[1] < gaps[2], gaps
        print(f"\nwaits between the tries: {', '.join(f'{gap:.2f}' for gap in gaps)} s (planned {planned})")

        entry = open_entry(photo_id)
        assert entry.task == "process_photo" and entry.attempts == RETRIES + 1
        assert entry.error.startswith("StorageUnavailable:")
        # No further try: nothing queued or scheduled anywhere, and the entry is the only one.
        time.sleep(1.5)
        assert jobs.huey.pending_count() == 0 and jobs.huey.scheduled_count() == 0
        assert db.session.scalar(select(Photo.processing_attempts).where(Photo.id == photo_id)) == RETRIES + 1
        assert db.session.scalar(select(func.count()).select_from(FailedJob)) == 1

        login(client, "ada")
        html = client.get("/admin/jobs").get_data(as_text=True)
        assert f'href="/photos/{photo_id}"' in html and "StorageUnavailable" in html and "Erneut versuchen" in html
        assert "0 Aufträge warten" in html

        away.rename(store)  # the disk is back
        response = client.post(f"/admin/jobs/{entry.id}/retry")
        assert response.status_code == 302
        wait_for(lambda: statuses([photo_id]) == [PhotoStatus.SUBMITTED], 60, "the retried job did not finish")
        db.session.expire_all()
        assert db.session.get(FailedJob, entry.id).retried_at is not None
        assert len(db.session.get(Photo, photo_id).derivatives) == 4
        assert "Erneut gestartet am" in client.get("/admin/jobs").get_data(as_text=True)
        db.session.remove()


@pytest.mark.parametrize("writer", ["worker", "follower"])
def test_with_index_followers_the_workers_leave_the_search_index_alone(tmp_path: Path, redis_url: str,
                                                                      writer: str) -> None:
    app = redis_app(tmp_path, redis_url, SEARCH_INDEX_WRITER=writer)
    with app.app_context():
        jobs = get_jobs()
        periodic = sorted(task.name for task in jobs.huey.read_periodic(datetime(2026, 11, 26, 12, 15)))
        photo_id = ingest(app, jobs.enqueue_processing, (1, 2, 3))
        jobs.huey.execute(jobs.huey.dequeue())
        assert statuses([photo_id]) == [PhotoStatus.SUBMITTED]
        if writer == "worker":
            assert periodic == ["apply_outbox_periodic", "reconcile"]
            assert jobs.huey.pending_count() == 1  # the index writer, queued by the processing
            jobs.huey.execute(jobs.huey.dequeue())
            assert get_search_index().stamps().keys() == {photo_id}
        else:
            assert periodic == ["reconcile"]
            jobs.outbox_changed()
            assert jobs.huey.pending_count() == 0
            assert not get_search_index().exists()
        db.session.remove()


def test_the_index_writer_lock_is_shared_by_all_worker_hosts(tmp_path: Path, redis_url: str) -> None:
    app = redis_app(tmp_path, redis_url)
    with app.app_context():
        here, other_host = get_jobs(), Jobs(app, make_huey(app.config))
        locked: list[str] = []
        other_host.huey.signal("locked")(lambda _signal, task, *_: locked.append(task.name))
        with here.huey.lock_task("search-index-writer"):
            other_host.outbox_changed()
            other_host.huey.execute(other_host.huey.dequeue())
        assert locked == ["apply_outbox"]
        assert not get_search_index().exists()  # the other host did not write while the lock was held
        db.session.remove()
