"""Shared fixtures: a fresh app per test on its own folders and SQLite file, real migrations,
the seeded associations, and people of every role. Real servers live in tests/servers/."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from tests.servers.database import CHOICES as DATABASE_CHOICES
from tests.servers.database import OPTION as DATABASE_OPTION
from tests.servers.database import PostgresDatabases, database_settings, use_postgres

pytest_plugins = ["tests.servers.fixtures", "tests.servers.redis_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
PASSWORD = "correct horse battery"


# Modules whose tests check what no database can change: image files, metadata, the search engine, the object
# stores, settings and docs, the benchmarks' smoke runs (they make their own databases), and the accessibility of
# the pages' markup. ./dev.sh test runs them in the first database's run only (--database-dependent-only).
ANY_DATABASE = ("tests/test_media.py", "tests/test_metadata.py", "tests/test_search.py", "tests/test_storage.py",
                "tests/test_s3_scale.py", "tests/test_settings.py", "tests/test_docs.py", "tests/test_catalogue.py",
                "tests/test_bench_scale_smoke.py", "tests/test_bench_ingest_smoke.py",
                "tests/e2e/test_accessibility.py")
DEPENDENT_ONLY_OPTION = "--database-dependent-only"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(DATABASE_OPTION, choices=DATABASE_CHOICES, default="sqlite",
                     help="the database every test's archive runs on (default: sqlite; see tests/servers/database.py)")
    parser.addoption(DEPENDENT_ONLY_OPTION, action="store_true",
                     help="leave out the tests marked any_database (a further database's run of the same suite)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::")[0] in ANY_DATABASE:
            item.add_marker(pytest.mark.any_database)
    if not config.getoption(DEPENDENT_ONLY_OPTION):
        return
    left_out = [item for item in items if item.get_closest_marker("any_database")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("any_database")]


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.getoption(DEPENDENT_ONLY_OPTION):
        return (f"{DEPENDENT_ONLY_OPTION}: the tests that no database changes ({len(ANY_DATABASE)} modules, marked "
                "any_database) are left out; the first database's run has them")
    return None


@pytest.fixture(scope="session", autouse=True)
def _database_of_this_run(request: pytest.FixtureRequest) -> Iterator[None]:
    """With --database=postgresql every archive a test sets up lives on the session's PostgreSQL server."""
    if request.config.getoption(DATABASE_OPTION) != "postgresql":
        yield
        return
    databases = PostgresDatabases(request.getfixturevalue("pg_server"))
    use_postgres(databases)
    try:
        yield
    finally:
        databases.drop()
        use_postgres(None)


@pytest.fixture(autouse=True)
def _fresh_databases(_database_of_this_run: None) -> Iterator[None]:
    """Each test's archives get new databases; those of module fixtures (made before) live on."""
    from tests.servers import database

    before = database._databases.folders() if database._databases is not None else set()
    yield
    if database._databases is not None:
        database._databases.drop(keep=before)


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's ARCHIVE_* variables must not change what a test sees."""
    for name in list(os.environ):
        if name.startswith("ARCHIVE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def running_archive(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The real archive (gunicorn + worker) on 127.0.0.1: its base URL and the admin's one-time password."""
    from tests.servers.archive import running_archive

    try:
        with running_archive(tmp_path) as server:
            yield server
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@contextmanager
def recorded_statements() -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) that the current app's engine runs inside the block."""
    from sqlalchemy import event

    from archive.models import db

    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        statements.append((statement, parameters))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared photo corpus is missing: expected it at {CORPUS} (../shared beside the repo)")
    return CORPUS


def settings_for(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        **database_settings(tmp_path / "instance"),
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "INDEX_DIR": str(tmp_path / "index"),
        "SECRET_KEY": "test-secret",
        "QUEUE": "immediate",
        "WTF_CSRF_ENABLED": False,
        "TESTING": True,
        **extra,
    }


def make_ready_app(overrides: dict[str, Any]) -> Flask:
    """An app with its database migrated and the associations seeded, as `brucken init` leaves it."""
    from flask_migrate import upgrade

    from archive import create_app
    from archive.models import db
    from archive.seed import seed_associations

    app = create_app(overrides)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        seed_associations(db.session)
    return app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_ready_app(settings_for(tmp_path))
    with app.app_context():
        yield app
        from archive.models import db

        db.session.remove()
        db.engine.dispose()


class IsolatedClient(FlaskClient):
    """Each request in its own app context, as in production: its own `g` and database session,
    even while the test holds an app context of its own."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        # Werkzeug's test client spools large request bodies to a temporary file it never closes.
        body = getattr(response, "request", None) and response.request.environ.get("wsgi.input")
        if body is not None and hasattr(body, "close"):
            body.close()
        return response


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def people(app: Flask) -> dict[str, Any]:
    """One person of each kind: members of two associations, a curator and an admin."""
    from sqlalchemy import select

    from archive.auth import hash_password
    from archive.models import Association, Role, User, db

    def association(slug: str) -> int:
        return db.session.scalar(select(Association.id).where(Association.slug == slug))

    made = {
        "member": User(username="mia", role=Role.MEMBER, association_id=association("pasadena"),
                       password_hash=hash_password(PASSWORD)),
        "other_member": User(username="omar", role=Role.MEMBER, association_id=association("lorient"),
                             password_hash=hash_password(PASSWORD)),
        "curator": User(username="cora", role=Role.CURATOR, password_hash=hash_password(PASSWORD)),
        "admin": User(username="ada", role=Role.ADMIN, password_hash=hash_password(PASSWORD)),
    }
    db.session.add_all(made.values())
    db.session.commit()
    return made


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)


def jpeg_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (640, 480),
               **save: Any) -> bytes:
    """A small real JPEG; a different colour gives a different photo (and SHA-256)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", **save)
    return buffer.getvalue()
