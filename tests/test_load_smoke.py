"""The load benchmark's harness (bench/load) in small, so CI guards it: a real gunicorn with two workers and the
job worker, 4 uploaders, 8 searchers and 2 caption editors for 15 s (catalogue cases 52-54 in small). Zero 5xx,
every request answered, every accepted photo exactly once in the database and processed, every invalid file
refused with a 4xx, the index equal to the database, and no error in the server's log.

The accounting itself is checked on made-up records, so that a harness that stopped noticing lost or doubled
photos would fail here too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bench.load.harness import Archive, Options, UploadRecord, account, run
from bench.load.report import lines
from tests.conftest import login
from tests.photos import upload_one


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_short_load_loses_nothing_and_answers_no_5xx() -> None:
    result = run(Options(uploaders=4, searchers=8, editors=2, seconds=15, workers=2, seeds=12, drain_seconds=240),
                 progress=lambda _line: None)
    report = "\n".join(lines(result))
    recorder = result.recorder
    assert recorder.count("5xx") == 0, report
    assert not recorder.client_errors, report
    assert result.drained, report
    assert result.problems == [], report
    assert result.log_findings == [], report
    kinds = {record.kind for record in result.records}
    assert {"photo", "duplicate"} <= kinds, report
    assert kinds - {"photo", "duplicate", "twin"}, "no invalid file was sent:\n" + report
    archived = {r.sha256 for r in result.records if r.outcome == "archived"}
    assert len(archived) >= 10, report
    assert recorder.count("2xx") > 100, report  # the searchers were busy too


def _record(sha256: str, outcome: str, kind: str = "photo", status: int = 201) -> UploadRecord:
    return UploadRecord(uploader=0, kind=kind, sha256=sha256, size=1, status=status, outcome=outcome, photo_id=1)


def test_the_accounting_notices_lost_doubled_and_wrongly_answered_photos(
        app: Flask, client: FlaskClient, people: dict[str, Any], tmp_path: Path) -> None:
    from archive.models import Photo, db

    login(client, "mia")
    photo = db.session.get(Photo, upload_one(client))
    archive = Archive(base="", folder=tmp_path, app=app)
    here = _record(photo.sha256, "archived")
    assert account(archive, [here, _record(photo.sha256, "duplicate", status=200)], []) == []

    lost = "ab" * 32
    for outcome in ("archived", "duplicate"):
        found = account(archive, [here, _record(lost, outcome)], [])
        assert any(p.startswith("lost:") and lost[:12] in p for p in found), found
    found = account(archive, [here, _record(photo.sha256, "archived")], [])
    assert any("answered 'archived' 2 times" in p for p in found), found
    found = account(archive, [here, _record("cd" * 32, "refused", kind="photo", status=415)], [])
    assert any("a valid photo (1 bytes) was answered 415" in p for p in found), found
    found = account(archive, [here, _record("ef" * 32, "archived", kind="bomb")], [])
    assert any("invalid file (bomb)" in p for p in found), found
