"""``brucken backup`` and ``brucken restore`` round-trip an archive exactly: restore into an empty installation,
back it up again, and the two backups agree table by table and object by object."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from archive import workflow
from archive.models import Association, ConsentScope, Photo, db
from tests.conftest import login, settings_for
from tests.photos import complete_bundle, publish, upload_one


def _fresh_app(tmp_path: Path) -> Flask:
    """A new installation, migrated and with nothing in it (``brucken restore`` migrates by itself)."""
    from archive import create_app

    return create_app(settings_for(tmp_path))


def _an_archive(client: Any, people: dict[str, Any]) -> list[int]:
    login(client, "mia")
    ids = [upload_one(client, color) for color in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]
    curator = people["curator"]
    complete_bundle(ids[0], curator)
    publish(ids[0], curator)
    workflow.record_consent(db.session, db.session.get(Photo, ids[1]), curator, person="Lena K.",
                            given_on=date(2024, 5, 1), scopes={ConsentScope.WEB}, reference="Ordner 3")
    db.session.commit()
    return ids


def _cli(app: Flask, *args: str) -> Any:
    """Run a command against ``app`` (the CLI uses whatever app context is active, so push this one)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def _all_rows(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    with app.app_context():
        return {table.name: [tuple(row) for row in db.session.execute(
                    select(table).order_by(*(table.primary_key.columns or table.columns)))]
                for table in db.metadata.sorted_tables}


def _same_backups(first: Path, second: Path) -> None:
    one = json.loads((first / "manifest.json").read_text())
    two = json.loads((second / "manifest.json").read_text())
    assert one["tables"] == two["tables"]  # same rows, same bytes, table by table
    assert (first / "objects.jsonl").read_text() == (second / "objects.jsonl").read_text()


def test_backup_and_restore_round_trip_exactly(app: Flask, client: Any, people: dict[str, Any],
                                               tmp_path: Path) -> None:
    ids = _an_archive(client, people)
    first = tmp_path / "sicherung-1"
    result = _cli(app, "backup", str(first), "--with-objects")
    assert result.exit_code == 0, result.output
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["tables"]["photos"]["rows"] == 3 and manifest["tables"]["audit_events"]["rows"] > 3
    assert manifest["objects"]["count"] >= 3 * 5  # originals and derivatives
    assert oct(first.stat().st_mode & 0o777) == "0o700"

    other = _fresh_app(tmp_path / "neu")
    result = _cli(other, "restore", str(first))
    assert result.exit_code == 0, result.output
    second = tmp_path / "sicherung-2"
    assert _cli(other, "backup", str(second), "--with-objects").exit_code == 0
    _same_backups(first, second)
    # And independently of the backup code: every table holds the same rows in both databases.
    assert _all_rows(other) == _all_rows(app)

    # The restored archive works: the published photo is found, its image is served, people can log in.
    visitor = other.test_client()
    found = visitor.get("/api/v1/search", query_string={"q": "Rhein"}).get_json()
    assert [hit["id"] for hit in found["hits"]] == [ids[0]]
    with other.app_context():
        thumb = db.session.get(Photo, ids[0]).derivative("thumb", "jpeg")
        assert thumb is not None
    assert visitor.get(f"/media/{ids[0]}/thumb.jpg").status_code == 200
    member = other.test_client()
    login(member, "mia")
    assert member.get("/photos").status_code == 200
    # New rows get new ids after the restored ones.
    with other.app_context():
        db.session.add(Association(slug="neu", name="Neu", partner_city="Neustadt"))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Association)) > 7


def test_restore_refuses_a_filled_installation_and_a_damaged_backup(app: Flask, client: Any,
                                                                     people: dict[str, Any], tmp_path: Path) -> None:
    _an_archive(client, people)
    folder = tmp_path / "sicherung"
    assert _cli(app, "backup", str(folder)).exit_code == 0
    result = _cli(app, "restore", str(folder))  # the archive it came from is not empty
    assert result.exit_code != 0 and "nicht leer" in result.output and "not empty" in result.output

    other = _fresh_app(tmp_path / "neu")
    table = folder / "tables" / "photos.jsonl"
    table.write_text(table.read_text().replace("bruecke", "brucke"))
    result = _cli(other, "restore", str(folder))
    assert result.exit_code != 0 and "beschädigt" in result.output
    with other.app_context():
        assert db.session.scalar(select(func.count()).select_from(Photo)) == 0  # nothing half-written


def test_a_backup_without_objects_names_what_the_store_lacks(app: Flask, client: Any, people: dict[str, Any],
                                                             tmp_path: Path) -> None:
    _an_archive(client, people)
    folder = tmp_path / "nur-liste"
    assert _cli(app, "backup", str(folder)).exit_code == 0
    assert not (folder / "objects").exists()
    other = _fresh_app(tmp_path / "neu")  # its own empty store: every object is missing there
    result = _cli(other, "restore", str(folder))
    assert result.exit_code != 0 and "fehlt im Speicher" in result.output
    with other.app_context():
        assert db.session.scalar(select(func.count()).select_from(Photo)) == 3


def test_backup_refuses_a_folder_that_is_not_empty(app: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "voll"
    folder.mkdir()
    (folder / "etwas.txt").write_text("x")
    result = _cli(app, "backup", str(folder))
    assert result.exit_code != 0 and "nicht leer" in result.output
    assert (folder / "etwas.txt").read_text() == "x"


def test_a_sqlite_archive_moves_to_postgresql_and_back(app: Flask, client: Any, people: dict[str, Any],
                                                        tmp_path: Path, pg_url: str) -> None:
    """The backup is the way from the embedded SQLite to a PostgreSQL server: every row arrives unchanged, the
    sequences continue after the restored ids, and a backup taken there restores into SQLite again."""
    ids = _an_archive(client, people)
    first = tmp_path / "von-sqlite"
    assert _cli(app, "backup", str(first), "--with-objects").exit_code == 0

    on_postgres = create_app_on(tmp_path / "pg", DATABASE_URL=pg_url)
    result = _cli(on_postgres, "restore", str(first))
    assert result.exit_code == 0, result.output
    assert _all_rows(on_postgres) == _all_rows(app)
    found = on_postgres.test_client().get("/api/v1/search", query_string={"q": "Rhein"}).get_json()
    assert [hit["id"] for hit in found["hits"]] == [ids[0]]
    member = on_postgres.test_client()
    login(member, "mia")
    assert member.get("/photos").status_code == 200
    with on_postgres.app_context():
        db.session.add(Association(slug="neu", name="Neu", partner_city="Neustadt"))
        db.session.commit()  # a sequence left behind the restored ids would collide here
        db.session.delete(db.session.scalar(select(Association).where(Association.slug == "neu")))
        db.session.commit()

    second = tmp_path / "von-postgres"
    assert _cli(on_postgres, "backup", str(second), "--with-objects").exit_code == 0
    on_postgres_rows = _all_rows(on_postgres)  # the login above added a session
    with on_postgres.app_context():
        db.engine.dispose()
    back = _fresh_app(tmp_path / "wieder-sqlite")
    assert _cli(back, "restore", str(second)).exit_code == 0
    assert _all_rows(back) == on_postgres_rows


def create_app_on(folder: Path, **settings: Any) -> Flask:
    from archive import create_app

    return create_app(settings_for(folder, **settings))


def test_a_backup_taken_while_people_work_restores(app: Flask, client: Any, people: dict[str, Any],
                                                    tmp_path: Path, monkeypatch: Any) -> None:
    """Between reading the associations and reading the people, another process adds an association and a member
    of it. The backup must read one moment of the database: both or neither, never the member alone."""
    from archive import backup as backup_module
    from archive.models import Role, User

    _an_archive(client, people)
    other = _fresh_app(tmp_path)  # as another process: the same archive, connections of its own
    reading = backup_module._rows

    def rows_while_someone_works(session: Any, table: Any) -> Any:
        yield from reading(session, table)
        if table.name == "associations":
            with other.app_context():
                association = Association(slug="neu", name="Neuer Verein", partner_city="Neustadt")
                db.session.add(association)
                db.session.flush()
                db.session.add(User(username="neu", role=Role.MEMBER, association_id=association.id,
                                    password_hash="x"))
                db.session.commit()
                db.session.remove()
                db.engine.dispose()

    monkeypatch.setattr(backup_module, "_rows", rows_while_someone_works)
    folder = tmp_path / "sicherung"
    result = _cli(app, "backup", "--with-objects", str(folder))
    assert result.exit_code == 0, result.output
    saved = [json.loads(line)["username"] for line in (folder / "tables" / "users.jsonl").read_text().splitlines()]
    assert "neu" not in saved, "a member saved during the backup is in it without their association"
    result = _cli(_fresh_app(tmp_path / "wiederhergestellt"), "restore", str(folder))
    assert result.exit_code == 0, result.output
