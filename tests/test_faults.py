"""Faults (reliability catalogue, section 8, cases 43-45, 48-51): after each, the database, the object store, the
staging disk and the search index agree, and the person uploading got a clear answer in words.

The S3 cases run against the real radosgw through tests/faultproxy.py; the app is set up as production should be
(short S3 timeouts, see S3_TIMEOUTS). A browser's view of the chunk API is followed step by step: after a 503 on the
last chunk, archive/static/upload.js asks how far the upload got (GET) and finishes it again with an empty chunk at
the end (PATCH at Upload-Offset = size); that is what is retried here.
"""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from archive.models import Association, OutboxEvent, Photo, PhotoStatus, User, db
from archive.reconcile import reconcile
from archive.services import get_jobs, get_search_index
from tests.conftest import PASSWORD, IsolatedClient, jpeg_bytes, login, make_ready_app, settings_for
from tests.consistency import assert_consistent, problems
from tests.faultproxy import FaultProxy
from tests.servers.database import lock_for_writers
from tests.servers.fixtures import admin_client

JSON = {"Accept": "application/json"}
BUDGET = 10.0  # seconds: the longest a person may wait for "the storage cannot be reached, try again"
# What production should set (and what config.py should default to; see the report): a black-holed or hung S3
# then costs at most 2 tries x 3 s + ~1 s back-off, well inside BUDGET and far inside gunicorn's --timeout.
S3_TIMEOUTS = {"S3_CONNECT_TIMEOUT": 2.0, "S3_READ_TIMEOUT": 3.0, "S3_MAX_ATTEMPTS": 2,
               "S3_MULTIPART_THRESHOLD": 16 * 1024 * 1024}
CHUNK = 1_000_000


# ---------------------------------------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------------------------------------


def add_member(username: str = "mia") -> None:
    from archive.auth import hash_password

    association = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    db.session.add(User(username=username, association_id=association, password_hash=hash_password(PASSWORD)))
    db.session.commit()


def ready(app: Flask) -> FlaskClient:
    """A member of an association, logged in (before any fault: logging in writes to the database)."""
    app.test_client_class = IsolatedClient
    add_member()
    client = app.test_client()
    login(client, "mia")
    return client


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[FaultProxy]:
    address = urllib.parse.urlsplit(s3_server.endpoint)
    with FaultProxy(address.hostname or "127.0.0.1", address.port or 80) as running:
        yield running


@pytest.fixture
def s3_app(tmp_path: Path, s3_config: dict[str, Any], proxy: FaultProxy) -> Iterator[Flask]:
    app = make_ready_app(settings_for(tmp_path, **{**s3_config, **S3_TIMEOUTS, "S3_ENDPOINT": proxy.endpoint}))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def local_app(tmp_path: Path) -> Iterator[Flask]:
    app = make_ready_app(settings_for(tmp_path, SQLITE_BUSY_TIMEOUT_MS=300, POSTGRES_LOCK_TIMEOUT_MS=300))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def noise_jpeg(size: tuple[int, int]) -> bytes:
    """A real JPEG that does not compress: (2400, 1600) gives about 7.5 MB."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, "JPEG", quality=100)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------------
# The two ways in, as a person's browser uses them
# ---------------------------------------------------------------------------------------------------------------------


def form_upload(client: FlaskClient, data: bytes, name: str = "bruecke.jpg") -> Any:
    return client.post("/upload", data={"photos": [(io.BytesIO(data), name)]}, content_type="multipart/form-data",
                       headers=JSON)


def announce(client: FlaskClient, data: bytes, name: str = "bruecke.jpg") -> str:
    response = client.post("/api/uploads", json={"filename": name, "size": len(data)}, headers=JSON)
    assert response.status_code == 201, response.get_data(as_text=True)
    return str(response.get_json()["url"])


def patch(client: FlaskClient, url: str, offset: int, chunk: bytes) -> Any:
    return client.patch(url, data=chunk, headers={**JSON, "Upload-Offset": str(offset),
                                                  "Content-Type": "application/offset+octet-stream"})


def send_chunks(client: FlaskClient, url: str, data: bytes, start: int = 0, stop: int | None = None) -> Any:
    """Chunks from ``start`` up to ``stop`` (default: the end); the last answer."""
    stop = len(data) if stop is None else stop
    offset, response = start, None
    while offset < stop:
        response = patch(client, url, offset, data[offset:min(offset + CHUNK, stop)])
        if response.status_code != 200:
            return response
        offset = response.get_json()["received"]
    return response


def resume(client: FlaskClient, url: str, data: bytes) -> Any:
    """What upload.js does after an error: ask for the offset, then go on from there (an empty chunk at the end
    when every byte had arrived)."""
    status = client.get(url, headers=JSON)
    assert status.status_code == 200, status.get_data(as_text=True)
    if status.get_json().get("result"):
        return status
    offset = status.get_json()["received"]
    if offset >= len(data):
        return patch(client, url, offset, b"")
    return send_chunks(client, url, data, start=offset)


def timed(call: Any, *args: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call(*args)
    return response, time.monotonic() - started


def photo_count() -> int:
    db.session.rollback()  # a fresh look, not the test's own snapshot
    return int(db.session.scalar(select(func.count(Photo.id))) or 0)


def staged_files(app: Flask) -> list[str]:
    staging = Path(app.config["STAGING_DIR"])
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())


def only_the_kept_chunk_upload(app: Flask, url: str) -> None:
    """After a 503 on the last chunk, the chunk API keeps the received bytes (so that finishing again works) and
    nothing else: no staged copy of the ingest pipeline is left behind."""
    upload_id = url.rsplit("/", 1)[-1]
    for name in staged_files(app):
        assert name.startswith("uploads/") and Path(name).stem.split(".")[0] == upload_id, name


def clean_up_and_check(app: Flask) -> None:
    """Reconcile as if the grace periods were over (orphaned objects, kept chunk-upload records), then every
    invariant must hold."""
    report = reconcile(db.session, _store(), {**app.config, "STALE_MINUTES": 0, "UPLOAD_RESUME_HOURS": 0},
                       lambda _photo_id: None)
    assert not report.problems, report.problems
    assert_consistent(app)


def _store() -> Any:
    from archive.services import get_store

    return get_store()


def assert_unavailable(response: Any, code: str, german: str, english: str) -> dict[str, Any]:
    """A 503 with Retry-After and the reason in both languages."""
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"].isdigit() and int(response.headers["Retry-After"]) > 0
    body = response.get_json()
    reason = body["results"][0]["reason"] if "results" in body else body["error"]
    assert reason["code"] == code, reason
    assert german in reason["de"] and english in reason["en"], reason
    return dict(body)


STORE_DOWN = ("storage_unavailable", "nicht erreichbar", "cannot be reached")


# ---------------------------------------------------------------------------------------------------------------------
# 43, 44: S3 refuses, black-holes or answers too slowly during an upload
# ---------------------------------------------------------------------------------------------------------------------

S3_FAULTS = {
    "refused": lambda proxy: proxy.refuse(),  # nothing listens
    "reset": lambda proxy: proxy.reset(),  # accepts and resets at once
    "blackholed": lambda proxy: proxy.blackhole(),  # accepts, never answers
    "slow": lambda proxy: proxy.delay(2 * S3_TIMEOUTS["S3_READ_TIMEOUT"]),  # answers after the read timeout
}
TIMINGS: dict[str, float] = {}


@pytest.mark.parametrize("fault", list(S3_FAULTS))
def test_s3_fault_during_a_form_upload_is_a_quick_clear_503_and_the_retry_works(
        s3_app: Flask, proxy: FaultProxy, fault: str) -> None:
    client = ready(s3_app)
    photo = jpeg_bytes((30, 90, 150))
    S3_FAULTS[fault](proxy)
    response, seconds = timed(form_upload, client, photo)
    TIMINGS[f"form/{fault}"] = seconds
    print(f"\n[case 43/44] form upload, S3 {fault}: {response.status_code} in {seconds:.2f} s")
    assert_unavailable(response, *STORE_DOWN)
    assert seconds < BUDGET
    assert photo_count() == 0
    assert staged_files(s3_app) == []  # I5 at once
    if fault in ("refused", "reset"):  # the page for people, in English (quick faults only: this costs a try)
        html = client.post("/upload", data={"photos": [(io.BytesIO(photo), "bruecke.jpg")]},
                           content_type="multipart/form-data", headers={"Accept-Language": "en"})
        assert html.status_code == 503 and html.headers["Retry-After"]
        assert "cannot be reached" in html.get_data(as_text=True)

    proxy.passing()
    # A slow S3 stored the object before the app gave up waiting: an orphan (reconcile's to remove), never a row
    # without its object.
    left = problems(s3_app)
    assert all(p.startswith("I3: object originals/") for p in left), left
    if fault == "slow":
        assert left, "the slow S3 should have kept the object the app stopped waiting for"
    assert_consistent(s3_app, orphans_allowed=True)
    again = form_upload(client, photo)  # the same file, sent again
    assert again.status_code == 201, again.get_data(as_text=True)
    assert photo_count() == 1
    clean_up_and_check(s3_app)


@pytest.mark.parametrize("fault", list(S3_FAULTS))
def test_s3_fault_at_the_last_chunk_is_a_quick_clear_503_and_the_browser_finishes_it_later(
        s3_app: Flask, proxy: FaultProxy, fault: str) -> None:
    client = ready(s3_app)
    photo = noise_jpeg((1400, 1000))
    assert len(photo) > 2 * CHUNK
    url = announce(client, photo)
    assert send_chunks(client, url, photo, stop=2 * CHUNK).status_code == 200
    S3_FAULTS[fault](proxy)  # only the last chunk, which archives the file, needs S3
    response, seconds = timed(send_chunks, client, url, photo, 2 * CHUNK)
    TIMINGS[f"chunked/{fault}"] = seconds
    print(f"\n[case 43/44] chunk API, S3 {fault}: {response.status_code} in {seconds:.2f} s")
    body = assert_unavailable(response, *STORE_DOWN)
    assert body["offset"] == len(photo) == int(response.headers["Upload-Offset"])
    assert "nicht erreichbar" in body["message"]
    assert seconds < BUDGET
    assert photo_count() == 0
    only_the_kept_chunk_upload(s3_app, url)

    if fault == "refused":  # the browser's first automatic retry, S3 still down: the same answer, nothing lost
        still = resume(client, url, photo)
        assert_unavailable(still, *STORE_DOWN)
        only_the_kept_chunk_upload(s3_app, url)
    proxy.passing()
    assert [p for p in problems(s3_app, orphans_allowed=True) if not p.startswith("I5: file left on the staging disk: "
                                                                           "uploads/")] == []
    finished = resume(client, url, photo)
    assert finished.status_code == 201, finished.get_data(as_text=True)
    result = finished.get_json()["result"]
    assert result["outcome"] == "archived"
    assert photo_count() == 1
    assert client.get(url, headers=JSON).get_json()["result"]["photo_id"] == result["photo_id"]  # learned later too
    clean_up_and_check(s3_app)


# ---------------------------------------------------------------------------------------------------------------------
# 45 (first part): the connection is cut in the middle of an 8 MB PUT
# ---------------------------------------------------------------------------------------------------------------------


def originals_in_bucket(s3_server: Any, s3_config: dict[str, Any]) -> list[str]:
    """Straight from radosgw, not through the proxy or the app."""
    client = admin_client(s3_server)
    try:
        listing = client.list_objects_v2(Bucket=s3_config["S3_BUCKET"], Prefix="originals/")
        return [item["Key"] for item in listing.get("Contents", [])]
    finally:
        client.close()


def test_a_connection_cut_mid_body_is_retried_or_refused_cleanly_never_a_partial_object(
        s3_app: Flask, proxy: FaultProxy, s3_server: Any, s3_config: dict[str, Any]) -> None:
    client = ready(s3_app)
    photo = noise_jpeg((2400, 1600))
    assert 7_000_000 < len(photo) < S3_TIMEOUTS["S3_MULTIPART_THRESHOLD"]  # one PUT, not a multipart upload

    proxy.cut_after(2_000_000)  # every try is cut: a clean failure
    response, seconds = timed(form_upload, client, photo)
    print(f"\n[case 45] form upload, every connection cut after 2 MB: {response.status_code} in {seconds:.2f} s")
    assert_unavailable(response, *STORE_DOWN)
    assert seconds < BUDGET
    assert originals_in_bucket(s3_server, s3_config) == []  # nothing half-written under the final key
    assert photo_count() == 0 and staged_files(s3_app) == []

    proxy.cut_after(2_000_000, times=1)  # one glitch: the S3 client's own retry gets past it
    again, seconds = timed(form_upload, client, photo)
    print(f"[case 45] form upload, one connection cut after 2 MB: {again.status_code} in {seconds:.2f} s")
    assert again.status_code == 201, again.get_data(as_text=True)
    photo_id = again.get_json()["results"][0]["photo_id"]
    with _store().open(db.session.get(Photo, photo_id).original_key) as stored:
        assert stored.read() == photo
    proxy.passing()
    clean_up_and_check(s3_app)


# ---------------------------------------------------------------------------------------------------------------------
# 48: the staging disk is full
# ---------------------------------------------------------------------------------------------------------------------

DISK_FULL = ("staging_full", "voll", "full")


class FillingDisk:
    """Writes under ``folder`` fail with ENOSPC once ``free`` bytes have been written there (the first write that
    does not fit writes what fits, as a real disk does). Other files are left alone."""

    def __init__(self, folder: Path, free: int) -> None:
        self.folder = str(folder)
        self.free = free

    def covers(self, path: str) -> bool:
        return path.startswith(self.folder + os.sep)

    def wrap(self, real: Any) -> Any:
        return _FillingFile(real, self)


class _FillingFile:
    def __init__(self, real: Any, disk: FillingDisk) -> None:
        self._real = real
        self._disk = disk

    def write(self, data: Any) -> int:
        data = bytes(data)
        if len(data) > self._disk.free:
            fits, self._disk.free = self._disk.free, 0
            if fits:
                self._real.write(data[:fits])
                self._real.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk.free -= len(data)
        self._real.write(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._real.close()


@pytest.fixture
def full_staging_disk(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Portable: the staging disk fills up after ``free`` bytes (every file the upload code writes there goes
    through tempfile.TemporaryFile, os.fdopen or Path.open); leaving the ``with`` block frees it."""
    import contextlib
    import tempfile

    @contextlib.contextmanager
    def filling(app: Flask, free: int) -> Iterator[FillingDisk]:
        disk = FillingDisk(Path(app.config["STAGING_DIR"]), free)
        real_fdopen, real_open, real_temporary = os.fdopen, Path.open, tempfile.TemporaryFile

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_fdopen(fd, mode, *args, **kwargs)
            writing = any(flag in mode for flag in "wa+")
            return disk.wrap(handle) if writing and disk.covers(os.readlink(f"/proc/self/fd/{fd}")) else handle

        def path_open(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            handle = real_open(path, mode, *args, **kwargs)
            writing = any(flag in mode for flag in "wa+")
            return disk.wrap(handle) if writing and disk.covers(str(path)) else handle

        def temporary(*args: Any, **kwargs: Any) -> Any:
            handle = real_temporary(*args, **kwargs)
            return disk.wrap(handle) if disk.covers(str(kwargs.get("dir", "")) + os.sep) else handle

        with monkeypatch.context() as patched:
            patched.setattr(tempfile, "TemporaryFile", temporary)
            patched.setattr(os, "fdopen", fdopen)
            patched.setattr(Path, "open", path_open)
            yield disk

    return filling


@pytest.mark.parametrize("fills_up", ["while the request is read", "while the file is staged"])
def test_a_full_staging_disk_refuses_a_form_upload_in_words_and_keeps_nothing(
        local_app: Flask, full_staging_disk: Any, fills_up: str) -> None:
    client = ready(local_app)
    photo = noise_jpeg((600, 400))
    # The request body is spooled to the staging disk first (archive/upload_stream.py), then staged (ingest.stage).
    free = len(photo) // 2 if fills_up == "while the request is read" else len(photo) * 3 // 2
    with full_staging_disk(local_app, free=free):
        response = form_upload(client, photo)
        assert_unavailable(response, *DISK_FULL)
        assert photo_count() == 0
        assert staged_files(local_app) == []  # the partial file is gone
    assert form_upload(client, photo).status_code == 201  # space again: the same file goes in
    clean_up_and_check(local_app)


def test_a_full_staging_disk_refuses_a_chunk_and_the_upload_resumes_once_there_is_room(
        local_app: Flask, full_staging_disk: Any) -> None:
    client = ready(local_app)
    photo = noise_jpeg((1000, 800))
    assert len(photo) > CHUNK
    url = announce(client, photo)
    assert send_chunks(client, url, photo, stop=CHUNK).status_code == 200
    with full_staging_disk(local_app, free=CHUNK // 3):
        response = send_chunks(client, url, photo, start=CHUNK)
        assert_unavailable(response, *DISK_FULL)
        status = client.get(url, headers=JSON).get_json()
        assert status["received"] == CHUNK  # the chunk that did not fit was given back, the earlier one kept
        assert photo_count() == 0
    finished = resume(client, url, photo)
    assert finished.status_code == 201, finished.get_data(as_text=True)
    assert finished.get_json()["result"]["outcome"] == "archived"
    clean_up_and_check(local_app)


@pytest.fixture
def small_staging_disk(tmp_path: Path) -> Iterator[Path]:
    """Realistic (root only, as in CI): a 5 MB tmpfs mounted as the staging folder."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the portable tests above cover the app's handling")
    staging = tmp_path / "uploads" / "staging"
    staging.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(staging)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs as root: {mounted.stderr.strip()}", pytrace=False)
    try:
        yield staging
    finally:
        subprocess.run(["umount", "-l", str(staging)], check=True)


def test_a_really_full_staging_disk_with_both_ways_in(tmp_path: Path, small_staging_disk: Path) -> None:
    app = make_ready_app(settings_for(tmp_path))
    assert Path(app.config["STAGING_DIR"]) == small_staging_disk
    with app.app_context():
        client = ready(app)
        big, small = noise_jpeg((2400, 1600)), noise_jpeg((700, 600))  # 7.5 MB does not fit in 5 MB; 0.8 MB does
        response = form_upload(client, big)
        assert_unavailable(response, *DISK_FULL)
        assert photo_count() == 0 and staged_files(app) == []
        assert form_upload(client, small).status_code == 201

        url = announce(client, big)
        refused = send_chunks(client, url, big)
        assert_unavailable(refused, *DISK_FULL)
        kept = client.get(url, headers=JSON).get_json()["received"]
        assert 0 < kept < len(big) and kept % CHUNK == 0  # whole chunks only: the one that did not fit is gone
        assert client.delete(url, headers=JSON).status_code == 204  # the person gives up on the big file
        photo = noise_jpeg((700, 602))
        url = announce(client, photo)
        assert send_chunks(client, url, photo).status_code == 201
        assert photo_count() == 2
        clean_up_and_check(app)
        db.session.remove()
        db.engine.dispose()


# ---------------------------------------------------------------------------------------------------------------------
# 51: the SQLite database is locked by another connection past the busy timeout
# ---------------------------------------------------------------------------------------------------------------------


def publish_photo(client: FlaskClient, color: tuple[int, int, int], caption: str) -> int:
    """Upload as the member, then publish (as a curator would) and let the index writer follow."""
    response = form_upload(client, jpeg_bytes(color))
    assert response.status_code == 201, response.get_data(as_text=True)
    photo_id = int(response.get_json()["results"][0]["photo_id"])
    run_queued_jobs()  # processed first (with QUEUE=immediate it already was)
    photo = db.session.get(Photo, photo_id)
    photo.caption, photo.status = caption, PhotoStatus.PUBLISHED
    db.session.add(OutboxEvent(topic="photo.changed", photo_id=photo_id))
    db.session.commit()
    get_jobs().outbox_changed()
    return photo_id


def search_ids(client: FlaskClient, words: str) -> list[int]:
    response = client.get("/api/v1/search", query_string={"q": words})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [hit["id"] for hit in response.get_json()["hits"]]


def test_a_locked_database_refuses_uploads_with_503_and_reads_go_on(local_app: Flask) -> None:
    client = ready(local_app)
    shown = publish_photo(client, (10, 120, 200), "Rheinbrücke bei Nacht")
    chunked = noise_jpeg((900, 700))
    url = announce(client, chunked)
    assert send_chunks(client, url, chunked, stop=CHUNK).status_code == 200

    holder = lock_for_writers(local_app)  # held far longer than the 300 ms the app waits
    try:
        response, seconds = timed(form_upload, client, jpeg_bytes((200, 120, 10)))
        print(f"\n[case 51] form upload, database locked: {response.status_code} in {seconds:.2f} s")
        assert_unavailable(response, "database_unavailable", "Datenbank", "database")
        assert seconds < BUDGET
        last, seconds = timed(send_chunks, client, url, chunked, CHUNK)
        print(f"[case 51] last chunk, database locked: {last.status_code} in {seconds:.2f} s")
        body = assert_unavailable(last, "database_unavailable", "Datenbank", "database")
        assert body["offset"] == len(chunked)
        # Reads go on beside the lock (WAL): the gallery, the search page and the search API.
        assert client.get("/").status_code == 200
        assert client.get("/search", query_string={"q": "Rheinbrücke"}).status_code == 200
        assert search_ids(client, "Rheinbrücke") == [shown]
        assert photo_count() == 1
        only_the_kept_chunk_upload(local_app, url)
    finally:
        holder.rollback()
        holder.close()
    # Nothing half-written: at most an original that no row points to, which reconcile removes.
    left = [p for p in problems(local_app) if not p.startswith("I5: file left on the staging disk: uploads/")]
    assert all(p.startswith("I3: object originals/") for p in left), left
    assert resume(client, url, chunked).status_code == 201  # the browser finishes the upload
    assert form_upload(client, jpeg_bytes((200, 120, 10))).status_code == 201
    assert photo_count() == 3
    clean_up_and_check(local_app)


# ---------------------------------------------------------------------------------------------------------------------
# 49: another process holds the Whoosh write lock
# ---------------------------------------------------------------------------------------------------------------------


def hold_index_writer(folder: str, ready: Any, release: Any) -> None:
    """In a separate process: take the index's write lock and keep it until released (at most 60 s)."""
    from whoosh import index

    writer = index.open_dir(folder).writer()
    ready.set()
    release.wait(60)
    writer.cancel()


def run_queued_jobs() -> int:
    """What the worker does, in this thread: every job that is due, in order. Returns how many ran."""
    huey = get_jobs().huey
    ran = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        ran += 1
    return ran


def test_the_index_lock_held_elsewhere_slows_no_request_and_the_writer_catches_up(tmp_path: Path) -> None:
    from archive.search import SearchIndex

    app = make_ready_app(settings_for(tmp_path, QUEUE="sqlite"))  # as in production: requests only enqueue
    with app.app_context():
        # The writer waits this long for the lock (production: 5 s), then gives up until the job's next run.
        app.extensions["brucken.search"] = SearchIndex(Path(app.config["INDEX_DIR"]), lock_timeout=1.0)
        client = ready(app)
        first = publish_photo(client, (90, 20, 160), "Alte Brücke im Nebel")
        run_queued_jobs()
        assert search_ids(client, "Brücke") == [first]

        index_dir = Path(app.config["INDEX_DIR"])
        generation = index_dir / (index_dir / "CURRENT").read_text().strip()
        spawn = multiprocessing.get_context("spawn")
        ready_event, release = spawn.Event(), spawn.Event()
        helper = spawn.Process(target=hold_index_writer, args=(str(generation), ready_event, release))
        helper.start()
        try:
            assert ready_event.wait(30), "the helper process did not take the index lock"
            threads = threading.active_count()
            response, seconds = timed(form_upload, client, jpeg_bytes((160, 20, 90)))
            print(f"\n[case 49] upload while another process holds the index lock: {response.status_code} in "
                  f"{seconds:.2f} s")
            assert response.status_code == 201 and seconds < 2.0
            second = publish_photo(client, (20, 160, 90), "Neue Brücke im Nebel")
            # Search serves the last committed index: the first photo, not yet the second.
            assert search_ids(client, "Brücke") == [first]

            started = time.monotonic()
            ran = run_queued_jobs()  # processing, then the index writer: it gives up after its lock timeout
            seconds = time.monotonic() - started
            print(f"[case 49] {ran} queued jobs with the index locked: {seconds:.2f} s; threads {threads} -> "
                  f"{threading.active_count()}")
            assert ran >= 1 and seconds < 10
            assert threading.active_count() == threads  # no retry threads piling up
            assert search_ids(client, "Brücke") == [first]
            assert db.session.scalar(select(func.count(OutboxEvent.id)).where(
                OutboxEvent.id > get_search_index().position())) > 0  # the changes wait in the outbox
        finally:
            release.set()
            helper.join(30)
        assert helper.exitcode == 0

        get_jobs()._apply_outbox()  # its next run (a retry, or the every-minute run)
        assert sorted(search_ids(client, "Brücke")) == sorted([first, second])
        assert_consistent(app)  # I4: the index equals the database
        db.session.remove()
        db.engine.dispose()


# ---------------------------------------------------------------------------------------------------------------------
# 50: the index is lost or damaged
# ---------------------------------------------------------------------------------------------------------------------


def _current_generation(app: Flask) -> Path:
    index_dir = Path(app.config["INDEX_DIR"])
    return index_dir / (index_dir / "CURRENT").read_text().strip()


def _truncate_segments(app: Flask) -> None:
    for segment in _current_generation(app).glob("*.seg"):
        segment.write_bytes(segment.read_bytes()[: segment.stat().st_size // 2])




DAMAGE = {
    "index deleted": lambda app: __import__("shutil").rmtree(app.config["INDEX_DIR"]),
    "toc deleted": lambda app: [toc.unlink() for toc in _current_generation(app).glob("*.toc")],
    "segment truncated": _truncate_segments,
    # A few garbled bytes are not here: whether a given search touches them depends on the index's contents, so
    # the outcome varies from run to run; the marker test below covers "opens, but a search fails".
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_lost_or_damaged_index_is_a_503_in_words_and_the_writer_rebuilds_it(local_app: Flask, damage: str) -> None:
    client = ready(local_app)
    photo_id = publish_photo(client, (120, 120, 30), "Brücke der Freundschaft")
    assert search_ids(client, "Freundschaft") == [photo_id]

    DAMAGE[damage](local_app)
    local_app.extensions.pop("brucken.search", None)  # a web process started after the damage
    page = client.get("/search", query_string={"q": "Freundschaft"})
    assert page.status_code == 503 and page.headers["Retry-After"].isdigit()
    assert "wird gerade neu aufgebaut" in page.get_data(as_text=True)
    english = client.get("/search", query_string={"q": "Freundschaft"}, headers={"Accept-Language": "en"})
    assert english.status_code == 503 and "being rebuilt" in english.get_data(as_text=True)
    api = client.get("/api/v1/search", query_string={"q": "Freundschaft"})
    assert_unavailable(api, "search_unavailable", "neu aufgebaut", "being rebuilt")

    get_jobs().outbox_changed()  # the writer's next run (after any change, and every minute)
    assert search_ids(client, "Freundschaft") == [photo_id]
    assert_consistent(local_app)


def test_an_index_that_opens_but_a_reader_found_unreadable_is_rebuilt_by_the_writer(local_app: Flask) -> None:
    """Some damage (a few garbled bytes in a segment) lets the index open and fail only when searched: the reader
    that finds it marks the generation, and the writer rebuilds although the index still opens."""
    client = ready(local_app)
    photo_id = publish_photo(client, (60, 60, 160), "Brücke am Fluss")
    index = get_search_index()
    damaged = _current_generation(local_app)
    index._mark_damaged()  # what a search that failed inside Whoosh does (archive/search.py, _reading)
    assert index.damaged()
    get_jobs().outbox_changed()
    assert _current_generation(local_app) != damaged and not index.damaged()
    assert search_ids(client, "Fluss") == [photo_id]
    assert_consistent(local_app)
