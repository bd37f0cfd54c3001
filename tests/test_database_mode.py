"""The suite runs on the database it was asked for (tests/servers/database.py): a run with
--database=postgresql that quietly fell back to SQLite would prove nothing about PostgreSQL."""

from __future__ import annotations

import pytest
from flask import Flask


def test_each_archive_runs_on_the_database_of_this_run(app: Flask, request: pytest.FixtureRequest) -> None:
    from archive.models import db

    assert db.engine.dialect.name == request.config.getoption("--database")


def test_two_archives_of_one_test_have_databases_of_their_own(tmp_path, request: pytest.FixtureRequest) -> None:
    from sqlalchemy import func, select

    from archive.models import Association, db
    from tests.conftest import make_ready_app, settings_for

    first = make_ready_app(settings_for(tmp_path / "first"))
    second = make_ready_app(settings_for(tmp_path / "second"))
    with first.app_context():
        db.session.delete(db.session.scalars(select(Association)).first())
        db.session.commit()
        left = db.session.scalar(select(func.count()).select_from(Association))
        db.engine.dispose()
    with second.app_context():
        assert db.session.scalar(select(func.count()).select_from(Association)) == left + 1
        db.engine.dispose()
