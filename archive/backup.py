"""``brucken backup`` and ``brucken restore``: the database as portable JSON lines, and the object store as a
manifest (and, for the embedded local store, a copy of every object).

A backup is a folder::

    manifest.json          format, migration revision, row counts and SHA-256 of every table file
    tables/<table>.jsonl   one row per line, columns by name, in primary-key order
    objects.jsonl          every object of the store: key, size (and sha256 when copied)
    objects/<key>          the objects themselves (``--with-objects``)

JSON lines rather than a database dump: a backup taken on SQLite restores onto PostgreSQL and back. Restore
only writes into an empty installation (migrated, no rows), in one transaction, so a failed restore leaves the
database as empty as it found it. The folder holds password hashes and personal data: it is created readable
by its owner only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Date, DateTime, LargeBinary, Table, func, insert, select, text
from sqlalchemy.orm import Session

from .errors import Refusal
from .models import db, utcnow
from .storage import ObjectStore

FORMAT = 1
BATCH = 1000
CHUNK = 1024 * 1024


@dataclass
class BackupReport:
    tables: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    object_bytes: int = 0


@dataclass
class RestoreReport:
    tables: dict[str, int] = field(default_factory=dict)
    objects_copied: int = 0
    objects_missing: list[str] = field(default_factory=list)
    objects_different: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.objects_missing and not self.objects_different


def tables() -> list[Table]:
    """Every table of the archive, parents before children (the order restore inserts them in)."""
    return list(db.metadata.sorted_tables)


def _encode(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "value"):  # an enum member
        return value.value
    return value


def _decode(column: Any, value: Any) -> Any:
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, DateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, Date):
        return date.fromisoformat(value)
    if isinstance(kind, LargeBinary):
        return base64.b64decode(value)
    return value


def _rows(session: Session, table: Table) -> Iterator[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = session.execute(select(table).order_by(*order).execution_options(yield_per=BATCH))
    for row in result.mappings():
        yield {column.name: _encode(row[column.name]) for column in table.columns}


def _revision(session: Session) -> str | None:
    try:
        return session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # a database made without migrations (tests): no revision to compare
        session.rollback()
        return None


def _read_one_snapshot(session: Session) -> None:
    """Every table read from one moment of the database, while people keep working: otherwise a photo saved
    between reading the associations and reading the photos could name an association the backup lacks, and
    the restore would refuse it. PostgreSQL: one REPEATABLE READ transaction. SQLite (whose driver starts no
    transaction for reading): an explicit BEGIN; in WAL mode, a reading transaction sees one snapshot."""
    session.rollback()
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:
        session.connection().exec_driver_sql("BEGIN")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup(session: Session, store: ObjectStore, target: Path, *, with_objects: bool = False) -> BackupReport:
    """Write a backup of the database and the store into ``target`` (a new or empty folder)."""
    if target.exists() and any(target.iterdir()):
        raise Refusal("backup_target_not_empty",
                      f"Der Ordner {target} ist nicht leer. Bitte einen neuen Ordner angeben.",
                      f"The folder {target} is not empty. Please name a new folder.", status=409)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "tables").mkdir(parents=True, mode=0o700)
    os.chmod(partial, 0o700)
    report = BackupReport()
    _read_one_snapshot(session)
    manifest: dict[str, Any] = {"format": FORMAT, "created_at": utcnow().isoformat(),
                                "revision": _revision(session), "tables": {}}
    for table in tables():
        path = partial / "tables" / f"{table.name}.jsonl"
        count = 0
        with path.open("w", encoding="utf-8") as handle:
            for row in _rows(session, table):
                handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                count += 1
        report.tables[table.name] = count
        manifest["tables"][table.name] = {"rows": count, "sha256": _sha256_file(path)}
    with (partial / "objects.jsonl").open("w", encoding="utf-8") as handle:
        for info in store.list(""):
            entry: dict[str, Any] = {"key": info.key, "size": info.size}
            if with_objects:
                entry["sha256"] = _copy_out(store, info.key, partial / "objects")
            handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
            report.objects += 1
            report.object_bytes += info.size
    manifest["objects"] = {"count": report.objects, "bytes": report.object_bytes, "copied": with_objects}
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    if target.exists():
        target.rmdir()
    partial.rename(target)  # a backup folder is complete or absent
    session.rollback()  # end the snapshot
    return report


def _copy_out(store: ObjectStore, key: str, folder: Path) -> str:
    path = folder.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for chunk in store.iter_chunks(key, CHUNK):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def _read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Refusal("backup_unreadable", f"Im Ordner {source} liegt keine lesbare Sicherung ({error}).",
                      f"The folder {source} holds no readable backup ({error}).", status=400) from error
    if manifest.get("format") != FORMAT:
        raise Refusal("backup_format", "Diese Sicherung hat ein unbekanntes Format.",
                      "This backup has an unknown format.", status=400)
    for name, entry in manifest["tables"].items():
        path = source / "tables" / f"{name}.jsonl"
        if not path.exists() or _sha256_file(path) != entry["sha256"]:
            raise Refusal("backup_damaged", f"Die Sicherung ist beschädigt: tables/{name}.jsonl passt nicht zum "
                          "Manifest. Es wurde nichts wiederhergestellt.",
                          f"The backup is damaged: tables/{name}.jsonl does not match its manifest. Nothing was "
                          "restored.", status=400)
    return manifest


def _refuse_unless_empty(session: Session) -> None:
    filled = [table.name for table in tables()
              if session.execute(select(func.count()).select_from(table)).scalar()]
    if filled:
        raise Refusal("restore_target_not_empty",
                      "Die Datenbank ist nicht leer (" + ", ".join(filled) + "). Eine Sicherung wird nur in eine "
                      "leere Installation zurückgespielt.",
                      "The database is not empty (" + ", ".join(filled) + "). A backup is only restored into an "
                      "empty installation.", status=409)


def restore(session: Session, store: ObjectStore, source: Path) -> RestoreReport:
    """Load a backup into an empty, migrated database; copy its objects into the store when it has them, and
    compare the store with the manifest."""
    manifest = _read_manifest(source)
    revision = _revision(session)
    if manifest.get("revision") and revision and manifest["revision"] != revision:
        raise Refusal("backup_revision",
                      f"Die Sicherung hat den Datenbankstand {manifest['revision']}, diese Installation {revision}. "
                      "Bitte dieselbe Version der Software verwenden, dann aktualisieren.",
                      f"The backup is at database revision {manifest['revision']}, this installation at {revision}. "
                      "Please restore with the same software version, then upgrade.", status=409)
    _refuse_unless_empty(session)
    report = RestoreReport()
    known = {table.name: table for table in tables()}
    for name in [table.name for table in tables() if table.name in manifest["tables"]]:
        table = known[name]
        columns = {column.name: column for column in table.columns}
        batch: list[dict[str, Any]] = []
        count = 0
        with (source / "tables" / f"{name}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                raw = json.loads(line)
                batch.append({key: _decode(columns[key], value) for key, value in raw.items() if key in columns})
                if len(batch) >= BATCH:
                    session.execute(insert(table), batch)
                    count += len(batch)
                    batch = []
        if batch:
            session.execute(insert(table), batch)
            count += len(batch)
        report.tables[name] = count
    _advance_sequences(session)
    session.commit()
    _restore_objects(store, source, manifest, report)
    return report


def _advance_sequences(session: Session) -> None:
    """PostgreSQL hands out ids from sequences that inserted ids do not move: set each past the largest id."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables():
        for column in table.primary_key.columns:
            if column.autoincrement is True or (column.autoincrement == "auto" and column.type.python_type is int
                                                and len(table.primary_key.columns) == 1):
                session.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"))


def _restore_objects(store: ObjectStore, source: Path, manifest: dict[str, Any], report: RestoreReport) -> None:
    copied = bool(manifest.get("objects", {}).get("copied"))
    with (source / "objects.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            key = entry["key"]
            if copied and not store.exists(key):
                path = source / "objects" / Path(*key.split("/"))
                if not path.exists() or _sha256_file(path) != entry["sha256"]:
                    report.objects_different.append(key)
                    continue
                store.put_file(key, path, mimetypes.guess_type(key)[0] or "application/octet-stream")
                report.objects_copied += 1
            if not store.exists(key):
                report.objects_missing.append(key)
            elif store.stat(key).size != entry["size"]:
                report.objects_different.append(key)
