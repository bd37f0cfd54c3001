"""Several web hosts, in one process: each host's own search index follows the database's outbox
(SEARCH_INDEX_WRITER=follower, archive/index_follower.py). The real processes are in tests/test_several_hosts.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from archive.index_follower import FollowerAlreadyRunning, cursor_name, follow_once, only_follower
from archive.models import OutboxCursor, OutboxEvent, Photo, PhotoStatus, db
from tests.conftest import IsolatedClient, make_ready_app, settings_for
from tests.test_indexing import archive_photo, search_ids


def host(tmp_path: Path, name: str) -> Flask:
    """One web host: the shared database (same instance settings), a search index folder of its own."""
    app = make_ready_app(settings_for(tmp_path, INDEX_DIR=str(tmp_path / f"index-{name}"),
                                      SEARCH_INDEX_WRITER="follower"))
    app.test_client_class = IsolatedClient
    return app


def visitor(app: Flask) -> FlaskClient:
    return app.test_client()


def set_status(app: Flask, photo_id: int, status: PhotoStatus) -> None:
    with app.app_context():
        db.session.get(Photo, photo_id).status = status
        db.session.add(OutboxEvent(topic="photo.changed", photo_id=photo_id))
        db.session.commit()


@pytest.fixture
def hosts(tmp_path: Path) -> Any:
    first, second = host(tmp_path, "a"), host(tmp_path, "b")
    yield first, second
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()


def test_a_photo_published_on_one_host_is_found_on_the_other_once_its_follower_ran(hosts: Any) -> None:
    first, second = hosts
    with first.app_context():
        photo_id = archive_photo(first, "Die Brücke von Lorient im Nebel")
    set_status(first, photo_id, PhotoStatus.PUBLISHED)
    follow_once(first)
    assert search_ids(visitor(first), q="Nebel") == [photo_id]
    assert not Path(second.config["INDEX_DIR"], "MAIN_WRITELOCK").exists()
    follow_once(second)  # a new host: builds its index from the database, then follows
    assert search_ids(visitor(second), q="Nebel") == [photo_id]
    with first.app_context():
        newest = db.session.scalar(select(OutboxEvent.id).order_by(OutboxEvent.id.desc()).limit(1))
        cursors = {c.name: c.position for c in db.session.scalars(select(OutboxCursor))}
    assert cursors == {cursor_name(first.config["INDEX_DIR"]): newest, cursor_name(second.config["INDEX_DIR"]): newest}


def test_each_host_searches_its_own_index_and_catches_up_by_the_outbox(hosts: Any) -> None:
    first, second = hosts
    follow_once(first), follow_once(second)
    with first.app_context():
        photo_id = archive_photo(first, "Hafenbrücke in Gaziantep")
    set_status(first, photo_id, PhotoStatus.PUBLISHED)
    follow_once(first)
    assert search_ids(visitor(first), q="Hafenbrücke") == [photo_id]
    assert search_ids(visitor(second), q="Hafenbrücke") == []  # its follower has not run: its own index
    assert follow_once(second) >= 1
    assert search_ids(visitor(second), q="Hafenbrücke") == [photo_id]


def test_an_unpublished_photo_leaves_search_on_every_host_before_the_followers_run(hosts: Any) -> None:
    first, second = hosts
    with first.app_context():
        photo_id = archive_photo(first, "Rheinbrücke bei Nacht")
    set_status(first, photo_id, PhotoStatus.PUBLISHED)
    follow_once(first), follow_once(second)
    assert search_ids(visitor(second), q="Rheinbrücke") == [photo_id]
    set_status(first, photo_id, PhotoStatus.IN_REVIEW)
    assert search_ids(visitor(first), q="Rheinbrücke") == []
    assert search_ids(visitor(second), q="Rheinbrücke") == []


def test_one_follower_per_index_folder(hosts: Any) -> None:
    first, _ = hosts
    folder = first.config["INDEX_DIR"]
    with only_follower(folder), pytest.raises(FollowerAlreadyRunning, match="Another follower"), only_follower(folder):
        pass
    with only_follower(first.config["INDEX_DIR"]):  # released when the first one ends
        pass


def test_follow_index_command_applies_and_reports(hosts: Any) -> None:
    first, _ = hosts
    with first.app_context():
        photo_id = archive_photo(first, "Brücke in Swjahel")
    set_status(first, photo_id, PhotoStatus.PUBLISHED)
    with first.app_context():  # the CLI uses whatever app context is active: this host's
        result = first.test_cli_runner().invoke(args=["follow-index", "--once"])
    assert result.exit_code == 0, result.output
    assert "change(s) applied" in result.output
    assert search_ids(visitor(first), q="Swjahel") == [photo_id]
