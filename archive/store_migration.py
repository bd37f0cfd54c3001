"""`brucken move-to-s3`: copy the local object store to S3, verified, before switching STORAGE to 's3'.

Reads every object of the local store (LOCAL_STORE_DIR, by default UPLOAD_DIR/store) and writes it to the bucket
the S3_* settings name, while the archive may still run on the local store. Each object is verified: an
original's bytes must have the SHA-256 its key names (a damaged local file is reported, never copied), and the
copy must have the local file's size and MD5 ETag (``S3Store.put_file`` sends Content-MD5 and compares; see
archive/storage.py). An object already on S3 with the same size and ETag is skipped, so after an interruption the
command simply runs again. At the end every key the database names (originals, derivatives, finished exports) must
be on S3 with the size the database records; only then does it print the setting to change. Local files are never
deleted: once the archive runs well on S3, the operator removes the folder.

Photos uploaded between the copy and the switch are in the local store only: run the command again right before
switching (it copies just those), ideally with uploads paused.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Derivative, Export, Photo
from .storage import (
    LocalStore,
    ObjectInfo,
    S3Store,
    StorageError,
    StorageUnavailable,
    multipart_etag,
    sha256_of_content_key,
)

PROGRESS_EVERY = 500  # objects between two progress lines


@dataclass
class MoveReport:
    copied: int = 0
    copied_bytes: int = 0
    already_there: int = 0  # on S3 with the same size and checksum: skipped
    failed: list[str] = field(default_factory=list)  # "key: reason", copying refused or verification failed
    damaged_locally: list[str] = field(default_factory=list)  # originals whose bytes do not match their key
    missing: list[str] = field(default_factory=list)  # named by the database, not on S3 (or not as recorded)
    stopped: str = ""  # why the copying stopped half-way (S3 unreachable, or refusing us), if it did
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not (self.failed or self.damaged_locally or self.missing or self.stopped)


@dataclass(frozen=True)
class _LocalDigest:
    size: int
    etag: str  # the ETag S3 gives this file when S3Store uploads it
    sha256: str


def _digest(path: Path, store: S3Store) -> _LocalDigest:
    """Size, S3 ETag (single MD5, or MD5 of the parts' MD5s with the store's part size) and SHA-256, in one read."""
    size = path.stat().st_size
    whole = hashlib.sha256()
    md5s: list[bytes] = []
    single = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(store.part_size):
            whole.update(chunk)
            if size <= store.multipart_threshold:
                single.update(chunk)
            else:
                md5s.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    etag = single.hexdigest() if size <= store.multipart_threshold else multipart_etag(md5s)
    return _LocalDigest(size=size, etag=etag, sha256=whole.hexdigest())


def _content_types(session: Session) -> dict[str, str]:
    """Originals have no extension: their type is in the database."""
    return {key: mime for key, mime in session.execute(select(Photo.original_key, Photo.mime_type))}


def _content_type(key: str, known: Mapping[str, str]) -> str:
    return known.get(key) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def _expected_objects(session: Session) -> Iterator[tuple[str, int | None]]:
    """Every key the database names, with the size it records."""
    yield from session.execute(select(Photo.original_key, Photo.size_bytes))
    yield from session.execute(select(Derivative.key, Derivative.size_bytes))
    yield from session.execute(select(Export.key, Export.size_bytes).where(Export.key.is_not(None)))


def move_to_s3(config: Mapping[str, Any], session: Session, *, dry_run: bool = False,
               echo: Callable[[str], None] = print) -> MoveReport:
    """Copy and verify (see the module documentation). Raises StorageError when a store cannot be used at all;
    problems with single objects are collected in the report."""
    local = LocalStore(Path(str(config.get("LOCAL_STORE_DIR") or Path(str(config["UPLOAD_DIR"])) / "store")))
    s3 = S3Store.from_settings({**config, "STORAGE": "s3"})
    if dry_run:
        s3.check()
    else:
        s3.ensure_bucket()
    report = MoveReport(dry_run=dry_run)
    on_s3: dict[str, ObjectInfo] = {info.key: info for info in s3.list()}
    types = _content_types(session)
    local_keys: set[str] = set()
    echo(f"Von / from {local.root} nach / to {s3!r}"
         + (" (Probelauf, nichts wird kopiert / dry run, nothing is copied)" if dry_run else ""))
    for number, info in enumerate(local.list(), start=1):
        local_keys.add(info.key)
        try:
            _move_one(local, s3, info.key, on_s3, types, report)
        except StorageUnavailable as error:
            # Unreachable, or refusing us (credentials, a policy, a quota): stopping is clearer than a thousand
            # failures, and a rerun skips what was copied.
            report.stopped = str(error)
            return report
        if number % PROGRESS_EVERY == 0:
            echo(f"  … {number} Objekte geprüft / objects checked ({report.copied} kopiert / copied)")
    _check_database(session, on_s3, local_keys, report)
    return report


def _move_one(local: LocalStore, s3: S3Store, key: str, on_s3: dict[str, ObjectInfo], types: Mapping[str, str],
              report: MoveReport) -> None:
    path = local.root.joinpath(*key.split("/"))
    try:
        digest = _digest(path, s3)
    except OSError as error:
        report.failed.append(f"{key}: lokal nicht lesbar / cannot read the local file: {error.strerror or error}")
        return
    promised = sha256_of_content_key(key)
    if promised is not None and digest.sha256 != promised:
        report.damaged_locally.append(f"{key}: SHA-256 {digest.sha256}")
        return
    present = on_s3.get(key)
    if present is not None and present.size == digest.size and present.etag == digest.etag:
        report.already_there += 1
        return
    if report.dry_run:
        report.copied += 1  # would be copied
        report.copied_bytes += digest.size
        on_s3[key] = ObjectInfo(key=key, size=digest.size, etag=digest.etag)
        return
    try:
        s3.put_file(key, path, _content_type(key, types))  # verified: SHA-256 of originals, Content-MD5, ETag
        stored = s3.stat(key)
    except StorageUnavailable:
        raise
    except StorageError as error:
        report.failed.append(f"{key}: {error}")
        return
    if stored.size != digest.size or (stored.etag and stored.etag != digest.etag):
        report.failed.append(f"{key}: auf S3 anders als lokal / differs on S3 (size {stored.size}, "
                             f"ETag {stored.etag}; local {digest.size}, {digest.etag})")
        return
    on_s3[key] = stored
    report.copied += 1
    report.copied_bytes += digest.size


def _check_database(session: Session, on_s3: Mapping[str, ObjectInfo], local_keys: set[str],
                    report: MoveReport) -> None:
    for key, size in _expected_objects(session):
        info = on_s3.get(key)
        if info is None:
            where = "" if key in local_keys else " (auch lokal nicht / not in the local store either)"
            report.missing.append(f"{key}: fehlt auf S3 / missing on S3{where}")
        elif size is not None and info.size != size:
            report.missing.append(f"{key}: {info.size} Bytes auf S3, die Datenbank sagt / the database says {size}")


def summary_lines(report: MoveReport) -> list[str]:
    copied = "würden kopiert / would be copied" if report.dry_run else "kopiert / copied"
    lines = [
        *([f"Abgebrochen / stopped: {report.stopped}"] if report.stopped else []),
        f"{report.copied} Objekt(e) {copied} ({report.copied_bytes / 1e6:.1f} MB)",
        f"{report.already_there} schon auf S3 und gleich / already on S3 and identical (übersprungen / skipped)",
    ]
    for title, items in (
        ("Nicht kopiert / not copied", report.failed),
        ("Lokal beschädigt, nicht kopiert (aus einer Sicherung wiederherstellen) / damaged in the local store, "
         "not copied (restore it from a backup)", report.damaged_locally),
        ("Von der Datenbank genannt, aber nicht auf S3 / named by the database but not on S3", report.missing),
    ):
        if items:
            lines.append(f"{title}: {len(items)}")
            lines.extend(f"  - {item}" for item in items[:50])
            if len(items) > 50:
                lines.append(f"  … und {len(items) - 50} weitere / and {len(items) - 50} more")
    return lines


@click.command("move-to-s3")
@click.option("--dry-run", is_flag=True, help="Nur prüfen und zählen, nichts kopieren / only check and count.")
@with_appcontext
def move_to_s3_command(dry_run: bool) -> None:
    """Copy every object of the local store to S3 (the S3_* settings), verified; run again after an interruption.
    Local files are kept."""
    from .models import db

    try:
        report = move_to_s3(current_app.config, db.session, dry_run=dry_run, echo=click.echo)
    except StorageError as error:
        raise click.ClickException(
            f"Abgebrochen: ein Speicher ist nicht erreichbar / stopped: a store cannot be used: {error}\n"
            "Prüfen Sie die ARCHIVE_S3_* Einstellungen und starten Sie den Befehl noch einmal; schon Kopiertes wird "
            "übersprungen. / Check the ARCHIVE_S3_* settings and run the command again; what was copied is skipped."
        ) from error
    for line in summary_lines(report):
        click.echo(line)
    if not report.ok:
        raise click.ClickException(
            "Noch nicht fertig: siehe oben. Nach dem Beheben den Befehl noch einmal starten (schon Kopiertes wird "
            "übersprungen). / Not finished: see above. Fix it and run the command again (what was copied is skipped)."
        )
    if dry_run:
        click.echo("Probelauf in Ordnung / dry run fine. Ohne --dry-run kopieren / run without --dry-run to copy.")
        return
    click.echo("Alles auf S3 und geprüft / everything is on S3 and verified. Jetzt umstellen / now set:")
    click.echo("  ARCHIVE_STORAGE=s3")
    click.echo(f"Die lokalen Dateien bleiben in / the local files stay in {current_app.config['LOCAL_STORE_DIR']} "
               "(löschen Sie sie erst, wenn alles läuft / delete them only once everything works).")
