"""Which database the whole test suite runs on: SQLite (the default) or a real PostgreSQL server.

    ./dev.sh test                          # SQLite: each test's database is a file in its own folder
    ./dev.sh test --database=postgresql    # PostgreSQL: each test gets a database of its own on one server

With PostgreSQL, the session starts one server (tests/servers/postgres.py, or the one BRUCKEN_TEST_PG_URL names),
migrates a template database once, and every archive folder a test sets up gets a fresh copy of it
(``CREATE DATABASE … TEMPLATE``, ~30 ms), dropped after the test. ``settings_for`` in tests/conftest.py and the
real-process helpers ask ``database_settings(folder)`` for the URL, so tests need not know which database runs.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

OPTION = "--database"
CHOICES = ("sqlite", "postgresql")
TEMPLATE = "brucken_template"


class PostgresDatabases:
    """One fresh database per archive folder of the running test, cloned from a migrated template."""

    def __init__(self, server: Any) -> None:
        from sqlalchemy.engine import make_url

        self._base = make_url(server.url("postgres"))
        self._current: dict[str, str] = {}  # archive folder -> database name
        self._execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')  # left by an earlier run elsewhere
        self._execute(f'CREATE DATABASE "{TEMPLATE}"')
        self._prepare_template()

    def _url(self, name: str) -> str:
        return self._base.set(database=name).render_as_string(hide_password=False)

    def _prepare_template(self) -> None:
        from flask_migrate import upgrade

        from archive import create_app

        # Migrated, not seeded: a test that restores a backup needs an empty archive; make_ready_app seeds.
        with tempfile.TemporaryDirectory(prefix="brucken-template-") as folder:
            app = create_app({"INSTANCE_DIR": folder, "UPLOAD_DIR": folder, "INDEX_DIR": folder,
                                  "SECRET_KEY": "template", "QUEUE": "immediate", "TESTING": True,
                                  "DATABASE_URL": self._url(TEMPLATE)})
            with app.app_context():
                from archive.models import db

                upgrade(directory=app.extensions["migrate"].directory)
                db.engine.dispose()  # a template must have no connections while it is copied

    def _execute(self, statement: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self._url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def url_for(self, folder: str) -> str:
        if folder not in self._current:
            name = f"test_{uuid.uuid4().hex[:16]}"
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
            self._current[folder] = name
        return self._url(self._current[folder])

    def folders(self) -> set[str]:
        return set(self._current)

    def drop(self, keep: Collection[str] = ()) -> None:
        """After each test: the databases it made go (those of module fixtures, in ``keep``, stay), whatever
        connections are still open (FORCE). The pools of the apps on them are closed first, so no connection is
        left for the garbage collector to find open."""
        gone = {folder: name for folder, name in self._current.items() if folder not in keep}
        self._close_pools(set(gone.values()))
        for folder, name in gone.items():
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._execute(f'DROP DATABASE IF EXISTS "{name}_snapshot" WITH (FORCE)')
            del self._current[folder]

    @staticmethod
    def _close_pools(names: set[str]) -> None:
        from archive.models import db

        for engines in list(db._app_engines.values()):
            for engine in engines.values():
                if engine.url.database in names:
                    engine.dispose()

    def snapshot(self, folder: str) -> None:
        name = self._current[folder]
        self._close_pools({name})
        self._execute(f'DROP DATABASE IF EXISTS "{name}_snapshot"')
        self._execute(f'CREATE DATABASE "{name}_snapshot" TEMPLATE "{name}"')

    def restore(self, folder: str) -> None:
        name = self._current[folder]
        self._close_pools({name})
        self._execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{name}_snapshot"')


_databases: PostgresDatabases | None = None


def use_postgres(databases: PostgresDatabases | None) -> None:
    global _databases
    _databases = databases


def running_on_postgres() -> bool:
    return _databases is not None


def snapshot_database(folder: Path | str) -> None:
    """Keep a copy of the database of the archive whose INSTANCE_DIR is ``folder`` (PostgreSQL; a SQLite database
    is a file in the folder, which the test copies itself)."""
    if _databases is not None:
        _databases.snapshot(str(Path(folder).resolve()))


def restore_database(folder: Path | str) -> None:
    """Put back the copy ``snapshot_database`` kept; the app's connections are closed first."""
    if _databases is not None:
        _databases.restore(str(Path(folder).resolve()))


def database_settings(folder: Path | str) -> dict[str, str]:
    """Settings that put the archive whose INSTANCE_DIR is ``folder`` on this run's database: nothing for SQLite
    (the archive makes its file in INSTANCE_DIR), DATABASE_URL of the folder's own database for PostgreSQL."""
    if _databases is None:
        return {}
    return {"DATABASE_URL": _databases.url_for(str(Path(folder).resolve()))}


def fingerprint(app: Any) -> str:
    """Every row of every table but the login bookkeeping (a session's last-seen time may move on any request):
    equal fingerprints mean a request changed nothing, on either database."""
    import hashlib

    from sqlalchemy import inspect, text

    from archive.models import db

    with app.app_context():
        digest = hashlib.sha256()
        skipped = {"login_failures", "login_sessions"}
        for table in sorted(set(inspect(db.engine).get_table_names()) - skipped):
            for row in db.session.execute(text(f'SELECT * FROM "{table}" ORDER BY 1')):
                digest.update(repr(tuple(row)).encode())
        db.session.remove()
        return digest.hexdigest()


def database_env(folder: Path | str) -> dict[str, str]:
    """``database_settings`` as the environment of a real `brucken` process (ARCHIVE_DATABASE_URL)."""
    return {f"ARCHIVE_{name}": value for name, value in database_settings(folder).items()}


def lock_for_writers(app: Any) -> Any:
    """Another process holding the archive's database so that nobody else can write, while reading goes on:
    SQLite's exclusive transaction (WAL readers continue), PostgreSQL's EXCLUSIVE lock on the photos table.
    Returns the holder's connection: ``rollback()`` and ``close()`` release it."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        import sqlite3

        holder = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        return holder
    import psycopg
    from sqlalchemy.engine import make_url

    address = make_url(url)
    holder = psycopg.connect(host=address.host, port=address.port, user=address.username, dbname=address.database)
    holder.execute("LOCK TABLE photos IN EXCLUSIVE MODE")  # reads (ACCESS SHARE) still pass
    return holder


def make_the_database_disappear(app: Any) -> None:
    """The database is gone (a lost disk, a dropped database): SQLite's files are deleted (SQLite then finds an
    empty file without tables), a PostgreSQL database is dropped with its connections."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        database = Path(url.removeprefix("sqlite:///"))
        for path in database.parent.glob(database.name + "*"):
            path.unlink()
        return
    from sqlalchemy.engine import make_url

    assert _databases is not None
    _databases._execute(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)')
