"""The migrations build exactly the schema the models describe, and go down and up again cleanly, on SQLite and
on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from archive import create_app
from archive.models import db
from tests.conftest import settings_for


def _differences() -> list[object]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_as_batch": True})
        return compare_metadata(context, db.metadata)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Empty: the embedded SQLite file; otherwise a fresh database on the session's PostgreSQL server."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def test_migrations_match_the_models_and_round_trip(tmp_path: Path, database_url: str) -> None:
    app = create_app(settings_for(tmp_path, DATABASE_URL=database_url))
    with app.app_context():
        folder = app.extensions["migrate"].directory
        upgrade(directory=folder)
        assert _differences() == []
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("photos")}
        assert {"ix_photos_status_changed", "ix_photos_status_association_changed"} <= indexes
        downgrade(directory=folder, revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade(directory=folder)
        assert _differences() == []
        db.engine.dispose()
