"""The archive killed with SIGKILL at every step of a photo's way, then restarted (catalogue cases 47 and 45's
stale multipart upload, ../shared/reference/reliability.md section 8).

Each case runs the archive as it runs in production, in real processes that all read the same site file
(ARCHIVE_CONFIG) and share the embedded job queue: the web app uploads a real camera photo (this module run with
``python -m``, through Flask's test client), then ``brucken worker`` makes its derivatives and applies the outbox to
the search index. ``BRUCKEN_CRASH_AT`` names the point where one of them dies (archive/faults.py); a point that
neither reaches fails the test. The test then plays the restarted archive with the real commands: ``brucken
reconcile`` with a zero grace period, then ``brucken worker`` until nothing is left to do. Afterwards every photo
is complete (original, derivatives, index) or gone without a trace, and the same upload tried again gives exactly
one photo for its SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from archive import faults
from archive.media import FORMATS, SIZES
from archive.models import OutboxEvent, Photo, PhotoStatus, db
from tests.conftest import CORPUS, PASSWORD, make_ready_app, settings_for
from tests.consistency import assert_consistent, problems

ROOT = Path(__file__).resolve().parent.parent
# A real camera JPEG (640 × 480, with EXIF): small, so that the loop stays quick.
PHOTO = CORPUS / "cameras" / "jpg" / "Casio EX-S1.jpg"
DERIVATIVES_PER_PHOTO = len(SIZES) * len(FORMATS)
CHILD_TIMEOUT = 120
WORKER_TIMEOUT = 90
MULTIPART_THRESHOLD = 5 * 1024 * 1024


# ---------------------------------------------------------------------------------------------------------
# The installation: its folders, its site file, and its processes
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Installation:
    """One archive on the test's folders: the settings every process of it reads, and the test's own app
    (created once; used to look at the database, the store and the index, and to upload again)."""

    folder: Path
    settings: dict[str, Any]
    app: Flask

    @property
    def site_file(self) -> Path:
        return self.folder / "site.py"

    def env(self, **settings: str) -> dict[str, str]:
        """The environment of a process of this installation, with ARCHIVE_<NAME> overrides."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_") and k != faults.CRASH_ENV}
        env["ARCHIVE_CONFIG"] = str(self.site_file)
        env.update({f"ARCHIVE_{name}": value for name, value in settings.items()})
        return env

    def brucken(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "archive", *args], env=self.env(**settings), cwd=ROOT,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=CHILD_TIMEOUT)
        assert result.returncode == 0, f"brucken {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def start_upload(self, photo: Path, *, crash_at: str | None = None,
                     hold_parts: bool = False) -> subprocess.Popen[str]:
        """The web app as a child process that uploads ``photo`` once (see ``_child`` below)."""
        env = self.env(QUEUE="sqlite")
        if crash_at is not None:
            env[faults.CRASH_ENV] = crash_at
        args = [sys.executable, "-m", "tests.test_crash_consistency", str(photo)]
        if hold_parts:
            args.append("--hold-parts")
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)

    def crash(self, photo: Path, point: str) -> str:
        """Upload ``photo``, then run the worker, each with ``point`` set, until one of them dies there by SIGKILL.
        Returns which one died."""
        upload = self.start_upload(photo, crash_at=point)
        try:
            out, err = upload.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            upload.kill()
            out, err = upload.communicate()
            pytest.fail(f"the upload neither finished nor reached {point} within {CHILD_TIMEOUT} s:\n{out}\n{err}")
        if upload.returncode == -signal.SIGKILL:
            return "upload"
        assert upload.returncode == 0, f"the upload failed ({upload.returncode}):\n{out}\n{err}"
        self.run_worker(crash_at=point)
        return "worker"

    def reconcile(self, *, stale_minutes: int = 0) -> dict[str, Any]:
        """`brucken reconcile` as the restarted archive runs it; its report."""
        result = self.brucken("reconcile", "--json", QUEUE="sqlite", STALE_MINUTES=str(stale_minutes))
        return json.loads(result.stdout.strip().splitlines()[-1])

    def run_worker(self, *, crash_at: str | None = None) -> None:
        """`brucken worker` until the queue is empty, no photo waits for processing and the index has applied
        the whole outbox; then it is stopped (SIGTERM, by its pid). With ``crash_at``, it must die there first."""
        from archive.jobs import make_huey

        queue = make_huey({**self.app.config, "QUEUE": "sqlite"})
        env = self.env(QUEUE="sqlite")
        if crash_at is not None:
            env[faults.CRASH_ENV] = crash_at
        log_path = self.folder / "worker.log"
        with log_path.open("a") as log:
            worker = subprocess.Popen([sys.executable, "-m", "archive", "worker", "--threads", "2"], env=env,
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                self._watch(worker, queue, crash_at, log_path)
            finally:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
                    try:
                        worker.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        worker.kill()
                        worker.wait()

    def _watch(self, worker: subprocess.Popen[bytes], queue: Any, crash_at: str | None, log_path: Path) -> None:
        deadline = time.monotonic() + WORKER_TIMEOUT
        while True:
            code = worker.poll()
            if code is not None:
                assert crash_at is not None and code == -signal.SIGKILL, (
                    f"the worker stopped ({code}), expected {crash_at or 'no stop'}:\n{log_path.read_text()}")
                return
            if self._idle(queue):
                if crash_at is None:
                    return
                # The point may be the last thing the worker does: give the kill a moment to land.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.wait(timeout=3)
                assert worker.returncode == -signal.SIGKILL, (
                    f"the photo went through upload and worker without reaching {crash_at}: the point is never "
                    f"reached on a photo's way\n{log_path.read_text()}")
                return
            assert time.monotonic() < deadline, (f"the worker did not finish within {WORKER_TIMEOUT} s: "
                                                 f"{self.state()}\n{log_path.read_text()}")
            time.sleep(0.2)

    def _idle(self, queue: Any) -> bool:
        state = self.state()
        return (queue.pending_count() == 0 and queue.scheduled_count() == 0
                and not state["processing"] and state["index_behind"] == 0)

    def state(self) -> dict[str, Any]:
        """What the database, the store, the staging disk and the index hold, in a few words."""
        from archive.services import get_search_index, get_store

        with self.app.app_context():
            photos = db.session.scalars(select(Photo).order_by(Photo.id)).all()
            rows = [(p.id, str(p.status), len(p.derivatives)) for p in photos]
            processing = [p.id for p in photos if p.status == PhotoStatus.PROCESSING]
            last_event = db.session.scalar(select(func.max(OutboxEvent.id))) or 0
            index = get_search_index()
            behind = last_event - index.position() if index.exists() else last_event
            store = get_store()
            objects = sorted(info.key for prefix in ("originals/", "derivatives/") for info in store.list(prefix))
            db.session.remove()
        staging = Path(self.app.config["STAGING_DIR"])
        staged = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        return {"rows": rows, "processing": processing, "objects": objects, "staged": staged,
                "index_behind": behind}

    def photos_with(self, sha256: str) -> list[Photo]:
        with self.app.app_context():
            photos = db.session.scalars(select(Photo).where(Photo.sha256 == sha256)).all()
            for photo in photos:
                db.session.expunge(photo)
            db.session.remove()
            return list(photos)

    def upload_here(self, photo: Path) -> dict[str, Any]:
        """The same upload once more, in this process (jobs run at once: the test app's queue is 'immediate')."""
        client = self.app.test_client()
        _login(client)
        response = _upload(client, photo)
        assert response.status_code in (200, 201), response.get_data(as_text=True)  # a duplicate gives 200
        return response.get_json()["results"][0]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The local object store, or a fresh bucket on the real S3 server (radosgw)."""
    return request.getfixturevalue("s3_config") if request.param == "s3" else {}


@contextmanager
def installed(folder: Path, **extra: Any) -> Iterator[Installation]:
    settings = settings_for(folder, **extra)
    site = {k: v for k, v in settings.items() if k != "QUEUE"}  # each process says which queue it uses
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.py").write_text("".join(f"{name} = {value!r}\n" for name, value in site.items()))
    app = make_ready_app(settings)
    with app.app_context():
        _add_member()
        _create_search_index()
        db.session.remove()
    try:
        yield Installation(folder, settings, app)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def installation(tmp_path: Path, store_settings: dict[str, Any]) -> Iterator[Installation]:
    with installed(tmp_path, **store_settings) as made:
        yield made


def _add_member() -> None:
    from archive.auth import hash_password
    from archive.models import Association, Role, User

    pasadena = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    db.session.add(User(username="mia", role=Role.MEMBER, association_id=pasadena,
                        password_hash=hash_password(PASSWORD)))
    db.session.commit()


def _create_search_index() -> None:
    """As `brucken init` does. (Without an index the first outbox run rebuilds it from the database instead of
    applying the outbox, and the indexing crash point would never be reached.)"""
    from archive.indexing import rebuild
    from archive.services import get_search_index

    rebuild(db.session, get_search_index())


def _login(client: Any) -> None:
    response = client.post("/login", data={"username": "mia", "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)


def _upload(client: Any, photo: Path) -> Any:
    return client.post("/upload", data={"photos": [(io.BytesIO(photo.read_bytes()), photo.name)]},
                       content_type="multipart/form-data", headers={"Accept": "application/json"})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Every crash point, with each store
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("point", faults.POINTS)
def test_killed_at_a_point_the_restarted_archive_finishes_or_cleans_the_photo(
        installation: Installation, point: str) -> None:
    sha256 = _sha256(PHOTO)
    died = installation.crash(PHOTO, point)
    print(f"\n{point}: the {died} died, leaving {installation.state()}")

    report = installation.reconcile()
    print(f"{point}: reconcile {report}")
    assert not report["problems"], report
    installation.run_worker()

    after = installation.state()
    assert not after["processing"], f"photos still waiting for processing after the restart: {after}"
    assert after["index_behind"] == 0, after
    assert_consistent(installation.app)
    for photo in installation.photos_with(sha256):
        assert photo.status == PhotoStatus.SUBMITTED, (photo.status, photo.processing_error)

    # The person tries again: one photo for this content, archived and complete.
    result = installation.upload_here(PHOTO)
    assert result["outcome"] in ("archived", "duplicate"), result
    photos = installation.photos_with(sha256)
    assert [p.id for p in photos] == [result["photo_id"]], photos
    with installation.app.app_context():
        photo = db.session.get(Photo, result["photo_id"])
        assert photo.status == PhotoStatus.SUBMITTED, (photo.status, photo.processing_error)
        assert len(photo.derivatives) == DERIVATIVES_PER_PHOTO
        db.session.remove()
    assert_consistent(installation.app)


# ---------------------------------------------------------------------------------------------------------
# Killed in the middle of a multipart upload to S3 (case 45's stale multipart upload, aborted by the janitor)
# ---------------------------------------------------------------------------------------------------------


def _large_jpeg(path: Path) -> Path:
    """A real JPEG of about 12 MB (noise does not compress): three parts of 5 MB."""
    from PIL import Image

    size = (3600, 2700)
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(path, "JPEG", quality=95)
    assert path.stat().st_size > 2 * MULTIPART_THRESHOLD
    return path


def _uploads_in_flight(client: Any, bucket: str) -> list[dict[str, Any]]:
    """Unfinished multipart uploads with the number of parts each holds."""
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [{"Key": u["Key"], "parts": len(client.list_parts(Bucket=bucket, Key=u["Key"],
                                                              UploadId=u["UploadId"]).get("Parts", []))}
            for u in uploads]


def test_a_multipart_upload_cut_by_a_crash_is_aborted_by_reconcile(
        tmp_path: Path, s3_server: Any, s3_config: dict[str, Any]) -> None:
    from archive.storage import content_key
    from tests.servers.fixtures import admin_client

    photo = _large_jpeg(tmp_path / "gross.jpg")
    s3, bucket = admin_client(s3_server), s3_config["S3_BUCKET"]
    with installed(tmp_path / "archive", **{**s3_config, "S3_MULTIPART_THRESHOLD": MULTIPART_THRESHOLD}) as archive:
        child = archive.start_upload(photo, hold_parts=True)
        try:
            # Killed from outside (as the OOM killer would) once S3 holds a part of the unfinished upload.
            deadline = time.monotonic() + CHILD_TIMEOUT
            while not any(u["parts"] for u in _uploads_in_flight(s3, bucket)):
                assert child.poll() is None, f"the upload ended before it was cut: {child.communicate()}"
                assert time.monotonic() < deadline, "no part of a multipart upload appeared"
                time.sleep(0.05)
        finally:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=CHILD_TIMEOUT)
        assert child.returncode == -signal.SIGKILL

        stale = _uploads_in_flight(s3, bucket)
        assert [u["Key"] for u in stale] == [content_key(_sha256(photo))], stale
        left = archive.state()
        print(f"\nmultipart: left {left}, in flight {stale}")
        assert left["rows"] == [] and left["objects"] == [], left
        assert len(left["staged"]) == 1, left

        # Within the grace period the upload may still be running in another process: it is left alone.
        report = archive.reconcile(stale_minutes=30)
        assert report["unfinished_writes"] == 0 and len(_uploads_in_flight(s3, bucket)) == 1, report

        report = archive.reconcile(stale_minutes=0)
        print(f"multipart: reconcile {report}")
        assert report["unfinished_writes"] == 1, report
        assert _uploads_in_flight(s3, bucket) == []
        assert archive.state()["staged"] == []
        assert problems(archive.app) == []


# ---------------------------------------------------------------------------------------------------------
# The child: the archive uploading one photo (python -m tests.test_crash_consistency PHOTO [--hold-parts])
# ---------------------------------------------------------------------------------------------------------


def _hold_after_each_part(**_: Any) -> None:
    """Keeps a multipart upload open after each part, so the test can cut it in the middle."""
    time.sleep(CHILD_TIMEOUT)


def _child(photo: Path, hold_parts: bool) -> int:
    from archive import create_app
    from archive.services import get_store

    app = create_app()  # the installation's site file, and the environment the test gives
    if hold_parts:
        with app.app_context():
            get_store().client.meta.events.register("after-call.s3.UploadPart", _hold_after_each_part)
    client = app.test_client()
    _login(client)
    response = _upload(client, photo)
    print(response.status_code, response.get_data(as_text=True))
    return 0 if response.status_code == 201 else 1


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1]), "--hold-parts" in sys.argv[2:]))
