"""Two web hosts against one PostgreSQL, one S3 server and one Redis, as real processes: each host is
`brucken run` (gunicorn with gunicorn.conf.py, a job worker, and `brucken follow-index` keeping its own search
index in a folder of its own). A photo a curator publishes through one host is found through the other within
seconds; taken offline through the other, it leaves search on both at once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from archive.auth import hash_password
from archive.models import Association, Photo, PhotoStatus, Role, User, db
from tests.conftest import PASSWORD, IsolatedClient, login, make_ready_app
from tests.photos import complete_bundle, upload_one
from tests.servers.archive import running_archive

pytestmark = pytest.mark.slow
WORD = "Hängebrücke"  # in the caption complete_bundle does not write: only this test's photo has it


@pytest.fixture
def shared(pg_url: str, s3_config: dict[str, Any], redis_url: str) -> dict[str, str]:
    """What every host of one archive shares: database, object store, queue, and the key that signs sessions."""
    return {"DATABASE_URL": pg_url, "QUEUE": "redis", "REDIS_URL": redis_url, "SEARCH_INDEX_WRITER": "follower",
            "INDEX_FOLLOW_SECONDS": "0.5", "SECRET_KEY": "x" * 40, "WEB_WORKERS": "1", "WEB_THREADS": "2",
            **{name: str(value) for name, value in s3_config.items()}}


@pytest.fixture
def hosts(tmp_path: Path, shared: dict[str, str]) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        first, _password = stack.enter_context(running_archive(tmp_path / "host-a", **shared))
        second, again = stack.enter_context(running_archive(tmp_path / "host-b", **shared))
        assert again == "", "the second host's `brucken init` made another admin"
        yield first, second


@pytest.fixture
def office(tmp_path: Path, shared: dict[str, str], hosts: Any) -> Iterator[Flask]:
    """The test's own view of the same archive (its own index folder, never searched)."""
    app = make_ready_app({**shared, "INSTANCE_DIR": str(tmp_path / "office"), "UPLOAD_DIR": str(tmp_path / "office"),
                          "INDEX_DIR": str(tmp_path / "office-index"), "TESTING": True, "WTF_CSRF_ENABLED": False})
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def logged_in(base: str, username: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    answer = session.post(f"{base}/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                          timeout=10, allow_redirects=False)
    assert answer.status_code in (302, 303), answer.text[:300]
    return session


def change_status(base: str, session: requests.Session, photo_id: int, **form: str) -> None:
    page = session.get(f"{base}/photos/{photo_id}", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = session.post(f"{base}/photos/{photo_id}/status", data={**form, "csrf_token": token}, timeout=10,
                          allow_redirects=False)
    assert answer.status_code in (302, 303), answer.text[:300]


def found(base: str, word: str) -> list[int]:
    answer = requests.get(f"{base}/api/v1/search", params={"q": word}, timeout=10)
    assert answer.status_code == 200, answer.text[:300]
    return [hit["id"] for hit in answer.json()["hits"]]


def wait_until(condition: Any, seconds: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < seconds, f"{what}: not within {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - began


def test_a_photo_published_through_one_host_is_found_through_the_other(hosts: Any, office: Flask) -> None:
    first, second = hosts
    pasadena = db.session.scalar(select(Association.id).where(Association.slug == "pasadena"))
    db.session.add_all([User(username="mia", role=Role.MEMBER, association_id=pasadena,
                             password_hash=hash_password(PASSWORD)),
                        User(username="cora", role=Role.CURATOR, password_hash=hash_password(PASSWORD))])
    db.session.commit()
    member = office.test_client()
    login(member, "mia")
    photo_id = upload_one(member, (30, 120, 200))  # queued on Redis: one of the hosts' workers makes the images
    wait_until(lambda: db.session.get(Photo, photo_id).status == PhotoStatus.SUBMITTED, 60, "processing")
    db.session.remove()
    curator = db.session.scalar(select(User).where(User.username == "cora"))
    complete_bundle(photo_id, curator, caption=f"Die {WORD} im Morgenlicht")
    db.session.remove()

    change_status(first, logged_in(first, "cora"), photo_id, action="publish")
    seconds = wait_until(lambda: found(second, WORD) == [photo_id], 15, "found through the other host")
    print(f"published on one host, found on the other after {seconds:.1f} s")
    assert found(first, WORD) == [photo_id]
    thumbnail = requests.get(f"{second}/media/{photo_id}/thumb.jpg", timeout=10)  # from S3, through host B
    assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/jpeg"

    change_status(second, logged_in(second, "cora"), photo_id, action="withdraw", reason="Bitte der Urheberin")
    assert found(first, WORD) == [] and found(second, WORD) == []  # at once, before the followers ran
    health = requests.get(f"{first}/healthz", timeout=10).json()
    assert health["checks"]["database"]["status"] == "ok" and health["checks"]["store"]["status"] == "ok"
