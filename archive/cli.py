"""The `brucken` command (also `flask --app archive ...`). Each command is a thin wrapper around a service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from .storage import StorageError
from .store_migration import move_to_s3_command


def _create_app() -> Flask:
    from . import create_app
    from .settings import SettingsError

    try:
        return create_app()
    except SettingsError as error:
        raise click.ClickException(str(error)) from error


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             help="Brücken, the photo archive of Fotoprojekt Brücken.")
def main() -> None:
    """Entry point of the console script."""


def register(app: Flask) -> None:
    for command in (init_command, run_command, worker_command, import_command, derivatives_command,
                    reconcile_command, reset_password_command, reindex_command, search_check_command,
                    token_group, invite_command, backup_command, restore_command, follow_index_command,
                    move_to_s3_command):
        app.cli.add_command(command)


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the database, seed the associations, make the first admin. Safe to run twice."""
    from flask_migrate import upgrade

    from .models import db
    from .seed import ensure_admin, seed_associations
    from .services import get_store

    upgrade(directory=current_app.extensions["migrate"].directory)
    store = get_store()
    try:
        if hasattr(store, "ensure_bucket"):
            store.ensure_bucket()
        store.check()
    except StorageError as error:
        raise click.ClickException(
            f"Der Fotospeicher ist nicht erreichbar / the photo storage cannot be used: {error}\n"
            "Prüfen Sie die ARCHIVE_S3_* bzw. ARCHIVE_LOCAL_STORE_DIR Einstellungen / check those settings."
        ) from error
    click.echo(f"Speicher bereit / storage ready: {current_app.config['STORAGE']}")
    added = seed_associations(db.session)
    click.echo(f"Datenbank bereit. {added} Verein(e) angelegt.")
    _ensure_search_index()
    password = ensure_admin(db.session)
    if password:
        click.echo("")
        click.echo("  Admin-Konto angelegt / admin account created")
        click.echo("  Benutzername / username: admin")
        click.echo(f"  Einmal-Passwort / one-time password: {password}")
        click.echo("  (Beim ersten Anmelden wählen Sie ein eigenes Passwort.)")
        click.echo("")
    else:
        click.echo("Ein Admin-Konto gibt es schon. / An admin account exists already.")


@click.command("reset-password")
@click.argument("username")
@with_appcontext
def reset_password_command(username: str) -> None:
    """Give an account a new one-time password (for a lost password); ends its sessions."""
    from .models import User, db
    from .seed import one_time_password

    user = db.session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise click.UsageError(f"Kein Konto / no account '{username}'.")
    password = one_time_password(db.session, user)
    click.echo(f"Einmal-Passwort für / one-time password for {user.username}: {password}")


def _user_or_fail(username: str) -> Any:
    from .models import User, db

    user = db.session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise click.UsageError(f"Kein Konto / no account '{username}'.")
    return user


def _refused(refusal: Any) -> click.ClickException:
    return click.ClickException(f"{refusal.de}\n{refusal.en}")


@click.group("token")
def token_group() -> None:
    """Personal API tokens for scripts (Authorization: Bearer ...)."""


@token_group.command("create")
@click.argument("username")
@click.argument("name")
@with_appcontext
def token_create_command(username: str, name: str) -> None:
    """Make a token for USER, named NAME; it is printed once and never shown again."""
    from .accounts import create_token
    from .errors import Refusal
    from .models import db

    try:
        token, secret = create_token(db.session, _user_or_fail(username), name)
    except Refusal as refusal:
        raise _refused(refusal) from refusal
    click.echo(secret)
    click.echo(f"Schlüssel {token.id} „{token.name}“ für / token for {token.user.username}. Er wird nur jetzt "
               "angezeigt / it is shown only now.", err=True)


@token_group.command("list")
@click.argument("username", required=False)
@with_appcontext
def token_list_command(username: str | None) -> None:
    """List the tokens (of USER, or everybody's): id, person, name, prefix, last use, state."""
    from .accounts import tokens_of
    from .models import db

    tokens = tokens_of(db.session, _user_or_fail(username) if username else None)
    if not tokens:
        click.echo("Keine Schlüssel / no tokens.")
    for token in tokens:
        used = token.last_used_at.strftime("%Y-%m-%d %H:%M") if token.last_used_at else "nie/never"
        state = f"widerrufen/revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "aktiv/active"
        click.echo(f"{token.id}\t{token.user.username}\t{token.name}\t{token.prefix}…\t{used} UTC\t{state}")


@token_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def token_revoke_command(token_id: int) -> None:
    """Revoke the token with this ID (see 'brucken token list'); it stops working at once."""
    from .accounts import revoke_token
    from .errors import Refusal
    from .models import db

    try:
        token = revoke_token(db.session, None, token_id)
    except Refusal as refusal:
        raise _refused(refusal) from refusal
    click.echo(f"Widerrufen / revoked: {token.id} „{token.name}“ ({token.user.username})")


@click.command("invite")
@click.argument("role", type=click.Choice(["member", "curator", "admin"]))
@click.option("--association", "slug", default=None, help="Slug of the association (members only).")
@with_appcontext
def invite_command(role: str, slug: str | None) -> None:
    """Make an invitation link for a new person and print it (it works once, for INVITATION_DAYS days)."""
    from flask import url_for

    from .accounts import create_invitation
    from .errors import Refusal
    from .models import Association, db

    association_id = None
    if slug:
        association_id = db.session.scalar(select(Association.id).where(Association.slug == slug))
        if association_id is None:
            slugs = ", ".join(db.session.scalars(select(Association.slug).order_by(Association.slug)))
            raise click.UsageError(f"Unbekannter Verein / unknown association '{slug}'. Bekannt / known: {slugs}")
    elif role == "member":
        raise click.UsageError("Ein Mitglied braucht --association / a member needs --association SLUG.")
    try:
        invitation, secret = create_invitation(db.session, None, role, association_id,
                                               days=int(current_app.config["INVITATION_DAYS"]))
    except Refusal as refusal:
        raise _refused(refusal) from refusal
    with current_app.test_request_context():
        path = url_for("auth.accept_invitation", token=secret)
    base = str(current_app.config.get("BASE_URL") or "").rstrip("/")
    click.echo(base + path)
    if not base:
        click.echo("(Nur der Pfad: setzen Sie ARCHIVE_BASE_URL für den ganzen Link / only the path: set "
                   "ARCHIVE_BASE_URL for the full link.)", err=True)
    click.echo(f"Gültig bis / valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC, einmal / once.", err=True)


def _ensure_search_index() -> None:
    from .indexing import rebuild
    from .models import db
    from .services import get_search_index

    index = get_search_index()
    if not index.exists():
        count = rebuild(db.session, index)
        click.echo(f"Suchindex angelegt / search index created ({count} Foto(s)).")


@click.command("worker")
@click.option("--threads", type=int, default=None, help="Jobs at once (default: WORKER_THREADS).")
@with_appcontext
def worker_command(threads: int | None) -> None:
    """Run the job worker: makes derivatives for new photos."""
    import logging

    from .services import get_jobs

    # Each job, retry and failure with its time and process: what an operator reads in `journalctl -u brucken-worker`.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s")
    consumer = get_jobs().consumer(threads or int(current_app.config["WORKER_THREADS"]))
    click.echo("Worker läuft. / Worker running.")
    consumer.run()


@click.command("follow-index")
@click.option("--once", is_flag=True, help="Apply what is new and stop (default: keep following).")
@with_appcontext
def follow_index_command(once: bool) -> None:
    """Keep this host's search index following the database (SEARCH_INDEX_WRITER=follower; one per host)."""
    import threading

    from .index_follower import FollowerAlreadyRunning, follow, follow_once, only_follower

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        if once:
            with only_follower(app.config["INDEX_DIR"]):
                applied = follow_once(app)
            click.echo(f"{applied} Änderung(en) übernommen. / {applied} change(s) applied.")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
        signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
        click.echo(f"Suchindex folgt der Datenbank: {app.config['INDEX_DIR']} / search index following the database")
        follow(app, stop)
    except FollowerAlreadyRunning as error:
        raise click.ClickException(str(error)) from error


@click.command("run")
@click.option("--host", default=None, help="Address to listen on (default: HOST).")
@click.option("--port", type=int, default=None, help="Port (default: PORT).")
@with_appcontext
def run_command(host: str | None, port: int | None) -> None:
    """Serve the archive with gunicorn and run the job worker beside it, until Ctrl-C."""
    from . import ROOT

    config = current_app.config
    bind = f"{host or config['HOST']}:{port or config['PORT']}"
    env = dict(os.environ)
    if host:
        env["ARCHIVE_HOST"] = host  # gunicorn.conf.py reads the same settings
    if port:
        env["ARCHIVE_PORT"] = str(port)
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                            "archive:create_app()"], env=env)
    children = [web, subprocess.Popen([sys.executable, "-m", "archive", "worker"], env=env)]
    if config["SEARCH_INDEX_WRITER"] == "follower":  # this host keeps its own search index (several hosts)
        children.append(subprocess.Popen([sys.executable, "-m", "archive", "follow-index"], env=env))
    click.echo(f"Brücken läuft auf http://{bind}/ (Strg-C beendet). / Brücken runs on http://{bind}/")
    _supervise(children)


def _supervise(children: list[subprocess.Popen[Any]]) -> None:
    """Stop all children when one ends or when we are asked to stop."""
    stopping = False

    def _stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.3)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=130)  # gunicorn's graceful timeout is 120 s
            except subprocess.TimeoutExpired:
                child.kill()
    codes = [child.returncode for child in children]
    if not stopping and any(codes):
        raise SystemExit(f"a part of Brücken stopped unexpectedly (exit codes {codes})")


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--association", "slug", required=True, help="Slug of the association that owns the photos.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--no-wait", is_flag=True, help="Leave the derivatives to the worker instead of waiting.")
@with_appcontext
def import_command(paths: tuple[Path, ...], slug: str, as_json: bool, no_wait: bool) -> None:
    """Import a folder tree of photos for an association."""
    from .importer import import_files, settle_failures, walk
    from .ingest import Ingest
    from .models import Association, db
    from .services import get_jobs, get_store

    association = db.session.scalar(select(Association).where(Association.slug == slug))
    if association is None:
        slugs = ", ".join(db.session.scalars(select(Association.slug).order_by(Association.slug)))
        raise click.UsageError(f"Unbekannter Verein / unknown association '{slug}'. Bekannt / known: {slugs}")
    jobs = get_jobs()
    waiting: list[int] = []
    enqueue = jobs.enqueue_processing if no_wait else waiting.append
    ingest = Ingest(db.session, get_store(), current_app.config, enqueue)
    files = list(walk(paths))
    with click.progressbar(files, label="Importieren", file=sys.stderr, show_pos=True,
                           item_show_func=lambda p: p.name if p else "") as bar:
        summary = import_files(bar, ingest, association)
    if waiting:
        # Waiting means the processing runs here, the same job the worker would run.
        with click.progressbar(waiting, label="Vorschaubilder", file=sys.stderr, show_pos=True) as bar:
            postponed = _process_each(bar, jobs)
        for photo_id in postponed:
            jobs.enqueue_processing(photo_id)  # the worker tries again; the photo itself is archived
        db.session.expire_all()
        settle_failures(db.session, get_store(), summary)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    click.echo(f"{summary.archived} archiviert / archived, {summary.duplicates} Duplikate / duplicates, "
               f"{len(summary.refused)} abgelehnt / refused")
    for item in summary.refused:
        click.echo(f"  {item['path']}: {item['reason']}")


@click.command("derivatives")
@click.option("--missing-only", is_flag=True, help="Only photos that lack a derivative.")
@with_appcontext
def derivatives_command(missing_only: bool) -> None:
    """Make the thumbnails and previews again for every photo (after the sizes table changed)."""
    from .media import FORMATS, SIZES
    from .models import Photo, PhotoStatus, db
    from .services import get_jobs, get_store

    expected = len(SIZES) * len(FORMATS)
    jobs, store = get_jobs(), get_store()
    # New photos ('processing') are the worker's; photos no image could be made from stay as they are.
    ids = list(db.session.scalars(select(Photo.id).where(Photo.status.not_in(
        [PhotoStatus.FAILED, PhotoStatus.PROCESSING])).order_by(Photo.id)))
    if missing_only:
        ids = [i for i in ids if not _complete(db.session.get(Photo, i), expected, store)]
    with click.progressbar(ids, label="Vorschaubilder", file=sys.stderr, show_pos=True) as bar:
        failed = _process_each(bar, jobs, remake=True)
    click.echo(f"{len(ids) - len(failed)} Foto(s) neu verarbeitet / photo(s) processed again.")
    if failed:
        raise click.ClickException(f"{len(failed)} Foto(s) nicht verarbeitet / not processed: {failed} "
                                   "(siehe Protokoll / see the log; später noch einmal / try again later)")


def _complete(photo: Any, expected: int, store: Any) -> bool:
    return len(photo.derivatives) >= expected and all(store.exists(d.key) for d in photo.derivatives)


def _process_each(photo_ids: Iterable[int], jobs: Any, *, remake: bool = False) -> list[int]:
    """Run the processing job here for each photo; one that fails (storage down, a clash with the worker)
    does not stop the others. Returns the ids that failed."""
    from .models import db

    failed = []
    for photo_id in photo_ids:
        try:
            jobs.run_processing_here(photo_id, remake=remake)
        except Exception:
            current_app.logger.exception("processing photo %s failed", photo_id)
            db.session.rollback()
            failed.append(photo_id)
    return failed


@click.command("reconcile")
@click.option("--dry-run", is_flag=True, help="Only show what would be done.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_appcontext
def reconcile_command(dry_run: bool, as_json: bool) -> None:
    """Finish or clean what a crash left: stuck photos, staged files, orphaned objects."""
    from .models import db
    from .reconcile import reconcile
    from .services import get_jobs, get_store

    report = reconcile(db.session, get_store(), current_app.config, get_jobs().enqueue_processing,
                       dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(f"{len(report.requeued)} Foto(s) neu eingereiht / requeued, "
               f"{len(report.removed_rows)} unvollständige Foto(s) entfernt / incomplete removed, "
               f"{len(report.removed_staged)} Zwischendatei(en) / staged files, "
               f"{len(report.removed_objects)} verwaiste Objekte / orphaned objects, "
               f"{report.unfinished_writes} abgebrochene Schreibvorgänge / unfinished writes"
               + (" (nur angezeigt / dry run)" if dry_run else ""))


@click.command("backup")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@click.option("--with-objects", is_flag=True,
              help="Copy every object (originals, derivatives) into the backup too: for the local store.")
@with_appcontext
def backup_command(target: Path, with_objects: bool) -> None:
    """Write the database and a manifest of the object store into a new folder TARGET."""
    from .backup import backup
    from .errors import Refusal
    from .models import db
    from .services import get_store

    try:
        report = backup(db.session, get_store(), target, with_objects=with_objects)
    except (Refusal, StorageError) as error:
        raise _refused(error) if isinstance(error, Refusal) else click.ClickException(str(error)) from error
    click.echo(f"Gesichert / backed up: {sum(report.tables.values())} Zeilen / rows in {len(report.tables)} "
               f"Tabellen / tables, {report.objects} Objekte / objects ({report.object_bytes} Bytes"
               + (", kopiert / copied" if with_objects else ", nur Liste / manifest only") + f") -> {target}")


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@with_appcontext
def restore_command(source: Path) -> None:
    """Restore a backup from SOURCE into this empty installation, then rebuild the search index."""
    from flask_migrate import upgrade

    from .backup import restore
    from .errors import Refusal
    from .indexing import apply_outbox, rebuild
    from .models import db
    from .services import get_search_index, get_store

    upgrade(directory=current_app.extensions["migrate"].directory)
    try:
        report = restore(db.session, get_store(), source)
    except (Refusal, StorageError) as error:
        raise _refused(error) if isinstance(error, Refusal) else click.ClickException(str(error)) from error
    index = get_search_index()
    rebuild(db.session, index)
    apply_outbox(db.session, index)
    click.echo(f"Wiederhergestellt / restored: {sum(report.tables.values())} Zeilen / rows, "
               f"{report.objects_copied} Objekte kopiert / objects copied.")
    for name, keys in (("fehlt im Speicher / missing in the store", report.objects_missing),
                       ("anders als gesichert / differs from the backup", report.objects_different)):
        for key in keys:
            click.echo(f"{name}: {key}", err=True)
    if not report.complete:
        raise click.ClickException("Die Datenbank ist zurückgespielt, aber Objekte fehlen oder weichen ab (siehe "
                                   "oben). / The database is restored, but objects are missing or differ (see above).")


@click.command("reindex")
@with_appcontext
def reindex_command() -> None:
    """Rebuild the search index from the database (after it was lost or damaged). Search keeps answering
    from the old index until the new one is complete."""
    from .indexing import apply_outbox, rebuild
    from .models import db
    from .services import get_search_index

    index = get_search_index()
    count = rebuild(db.session, index)
    apply_outbox(db.session, index)  # what changed during the rebuild
    click.echo(f"Suchindex neu aufgebaut / search index rebuilt: {count} Foto(s).")


@click.command("search-check")
@with_appcontext
def search_check_command() -> None:
    """Compare the search index with the database and print every difference."""
    from .indexing import compare
    from .models import db
    from .search import SearchUnavailable
    from .services import get_search_index

    try:
        differences = compare(db.session, get_search_index())
    except SearchUnavailable as error:
        raise click.ClickException(f"Suchindex nicht lesbar / search index unreadable: {error}. "
                                   "Abhilfe / fix: brucken reindex") from error
    for name, ids in (("fehlt / missing", differences.missing), ("veraltet / stale", differences.stale),
                      ("überzählig / extra", differences.extra)):
        if ids:
            click.echo(f"{name}: {', '.join(map(str, ids))}")
    if not differences.clean:
        raise click.ClickException("Suchindex und Datenbank weichen ab / index and database differ. "
                                   "Abhilfe / fix: brucken reindex")
    click.echo("Suchindex und Datenbank stimmen überein / index and database agree.")
