"""The brucken commands, run as a volunteer would: init, import, reconcile, derivatives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from archive.models import Association, Photo, PhotoStatus, Role, User, db
from archive.services import get_store
from tests.conftest import jpeg_bytes
from tests.servers.database import database_env


def brucken(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real console script in a child process, on folders of its own, with no standard input."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")}
    env.update(ARCHIVE_INSTANCE_DIR=str(tmp_path / "instance"), ARCHIVE_UPLOAD_DIR=str(tmp_path / "uploads"),
               ARCHIVE_INDEX_DIR=str(tmp_path / "index"), **database_env(tmp_path / "instance"))
    result = subprocess.run([sys.executable, "-m", "archive", *args], env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=240)
    if check and result.returncode != 0:
        raise AssertionError(f"brucken {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_init_seeds_and_is_safe_twice(tmp_path: Path) -> None:
    first = brucken(tmp_path, "init")
    assert "Einmal-Passwort / one-time password:" in first.stdout
    second = brucken(tmp_path, "init")
    assert "Ein Admin-Konto gibt es schon" in second.stdout
    assert "0 Verein(e) angelegt" in second.stdout

    from tests.conftest import make_ready_app, settings_for

    app = make_ready_app(settings_for(tmp_path))
    with app.app_context():
        slugs = set(db.session.scalars(select(Association.slug)))
        assert slugs == {"pasadena", "lorient", "havering", "sumgait", "gaziantep", "swjahel", "ruanda"}
        admins = db.session.scalars(select(User).where(User.role == Role.ADMIN)).all()
        assert len(admins) == 1 and admins[0].must_change_password


def test_import_a_folder_tree_waits_for_derivatives(tmp_path: Path, corpus: Path) -> None:
    folder = tmp_path / "fotos"
    (folder / "2023" / "sommer").mkdir(parents=True)
    (folder / "2023" / "sommer" / "rot.jpg").write_bytes(jpeg_bytes((200, 0, 0)))
    (folder / "2023" / "blau.jpg").write_bytes(jpeg_bytes((0, 0, 200)))
    (folder / "kopie-von-blau.jpg").write_bytes(jpeg_bytes((0, 0, 200)))
    (folder / "notizen.txt").write_text("Brücken-Fotos vom Sommerfest")
    (folder / "leer.jpg").write_bytes(b"")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "canon.jpg").write_bytes((corpus / "cameras/jpg/Canon PowerShot S400.jpg").read_bytes())
    brucken(tmp_path, "init")
    result = brucken(tmp_path, "import", str(folder), "--association", "sumgait", "--json")
    summary = json.loads(result.stdout)
    assert summary["archived"] == 3
    assert summary["duplicates"] == 1
    refused = {Path(item["path"]).name: item["reason"] for item in summary["refused"]}
    assert set(refused) == {"notizen.txt", "leer.jpg"}
    assert "kein Foto (Text erkannt)" in refused["notizen.txt"]
    assert "Importieren" in result.stderr  # the progress bar

    again = brucken(tmp_path, "import", str(folder), "--association", "sumgait")
    assert "0 archiviert / archived, 4 Duplikate / duplicates, 2 abgelehnt / refused" in again.stdout

    from tests.conftest import make_ready_app, settings_for

    app = make_ready_app(settings_for(tmp_path, QUEUE="sqlite"))
    with app.app_context():
        photos = db.session.scalars(select(Photo)).all()
        assert len(photos) == 3
        assert {p.status for p in photos} == {PhotoStatus.SUBMITTED}
        assert all(len(p.derivatives) == 4 for p in photos)
        assert {p.association.slug for p in photos} == {"sumgait"}


def test_import_refuses_an_unknown_association(tmp_path: Path) -> None:
    brucken(tmp_path, "init")
    result = brucken(tmp_path, "import", str(tmp_path), "--association", "atlantis", check=False)
    assert result.returncode == 2
    assert "atlantis" in result.stderr and "pasadena" in result.stderr


def test_reconcile_finishes_and_cleans_what_a_crash_left(app: Flask) -> None:
    from archive.ingest import Ingest
    from archive.models import utcnow
    from archive.reconcile import reconcile

    store = get_store()
    association = db.session.scalar(select(Association).where(Association.slug == "ruanda"))
    pending: list[int] = []
    ingest = Ingest(db.session, store, app.config, pending.append)  # the job never ran: a crash
    stuck = ingest.ingest(__import__("io").BytesIO(jpeg_bytes((5, 5, 5))), "a.jpg", association, None).photo_id
    lost = ingest.ingest(__import__("io").BytesIO(jpeg_bytes((6, 6, 6))), "b.jpg", association, None).photo_id
    store.delete(db.session.get(Photo, lost).original_key)  # its original never arrived
    store.put_bytes("originals/aa/bb/" + "ab" * 32, b"orphan", "image/jpeg")  # stored, row never written
    store.put_bytes("originals/cc/dd/" + "cd" * 32, b"in flight", "image/jpeg")  # an upload right now
    staged = Path(app.config["STAGING_DIR"]) / "upload-dead.part"
    staged.write_bytes(b"half")
    old = time.time() - 3 * 3600
    os.utime(staged, (old, old))
    orphan = Path(app.config["LOCAL_STORE_DIR"]) / "originals/aa/bb" / ("ab" * 32)
    os.utime(orphan, (old, old))
    half_written = orphan.parent / ".tmp-crashed"
    half_written.write_bytes(b"half")
    os.utime(half_written, (old, old))
    for photo_id in (stuck, lost):
        db.session.get(Photo, photo_id).created_at = utcnow().replace(year=2020)
    db.session.commit()

    requeued: list[int] = []
    dry = reconcile(db.session, store, app.config, requeued.append, dry_run=True)
    assert dry.requeued == [stuck] and requeued == [] and staged.exists()

    report = reconcile(db.session, store, app.config, requeued.append)
    assert report.requeued == [stuck] == requeued
    assert report.removed_rows == [lost]
    assert db.session.get(Photo, lost) is None
    assert report.removed_staged == ["upload-dead.part"] and not staged.exists()
    assert report.removed_objects == ["originals/aa/bb/" + "ab" * 32]
    assert not store.exists("originals/aa/bb/" + "ab" * 32)
    assert store.exists("originals/cc/dd/" + "cd" * 32)  # too young to judge: left alone
    assert report.unfinished_writes == 1 and not half_written.exists()
    assert store.exists(db.session.get(Photo, stuck).original_key)
    assert db.session.scalar(select(func.count(Photo.id))) == 1


@pytest.mark.parametrize(("flag", "remade"), [([], 2), (["--missing-only"], 1)])
def test_derivatives_command_remakes_them(tmp_path: Path, flag: list[str], remade: int) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_bytes((1, 100, 1)))
    (folder / "b.jpg").write_bytes(jpeg_bytes((100, 1, 1)))
    brucken(tmp_path, "init")
    brucken(tmp_path, "import", str(folder), "--association", "havering")
    thumb = next((tmp_path / "uploads/store/derivatives").rglob("thumb-*.jpg"))
    thumb.unlink()
    out = brucken(tmp_path, "derivatives", *flag)
    assert f"{remade} Foto(s) neu verarbeitet" in out.stdout
    assert thumb.exists()


def test_init_says_clearly_when_the_store_cannot_be_used(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store folder should be")
    env_store = {"ARCHIVE_LOCAL_STORE_DIR": str(blocked)}
    result = subprocess.run([sys.executable, "-m", "archive", "init"], capture_output=True, text=True,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")},
                                 "ARCHIVE_INSTANCE_DIR": str(tmp_path / "i"), "ARCHIVE_UPLOAD_DIR": str(tmp_path / "u"),
                                 **env_store}, stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 1
    assert "Fotospeicher ist nicht erreichbar" in result.stderr
    assert "Traceback" not in result.stderr


def test_reset_password_gives_a_new_one_time_password(tmp_path: Path) -> None:
    first = brucken(tmp_path, "init").stdout.split("one-time password: ")[1].split()[0]
    out = brucken(tmp_path, "reset-password", "admin").stdout
    second = out.split("one-time password for admin: ")[1].split()[0]
    assert second != first
    assert brucken(tmp_path, "reset-password", "nobody", check=False).returncode == 2

    from archive.auth import authenticate
    from tests.conftest import make_ready_app, settings_for

    app = make_ready_app(settings_for(tmp_path))
    with app.app_context():
        assert authenticate(db.session, "admin", first) is None
        admin = authenticate(db.session, "admin", second)
        assert admin is not None and admin.must_change_password


def test_reconcile_gives_up_on_a_photo_that_keeps_failing(app: Flask) -> None:
    import io

    from archive.ingest import Ingest
    from archive.models import utcnow
    from archive.reconcile import MAX_ATTEMPTS, reconcile

    association = db.session.scalar(select(Association).where(Association.slug == "ruanda"))
    photo_id = Ingest(db.session, get_store(), app.config, lambda _id: None).ingest(
        io.BytesIO(jpeg_bytes((8, 8, 8))), "a.jpg", association, None).photo_id
    photo = db.session.get(Photo, photo_id)
    photo.created_at = utcnow().replace(year=2020)
    photo.processing_attempts = MAX_ATTEMPTS
    db.session.commit()
    requeued: list[int] = []
    report = reconcile(db.session, get_store(), app.config, requeued.append)
    assert report.gave_up == [photo_id] and requeued == []
    assert photo.status == PhotoStatus.FAILED and "gescheitert" in photo.processing_error
