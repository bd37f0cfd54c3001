"""Access rules for the chunk API of resumable uploads: any logged-in person (or API token) announces files;
an upload is its uploader's alone (404 for everyone else, curators and admins included); visitors get a 401 in
words, not the login page (it is an API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app

from archive.models import PhotoStatus, User, db
from archive.resumable import ResumableUploads
from tests.access_rules import ANON, OK, OWN, Rule


def announce(role: str, state: PhotoStatus | None) -> int | str:
    return 401 if role == ANON else OK


def own_upload(role: str, state: PhotoStatus | None) -> int | str:
    if role == ANON:
        return 401
    return 200 if role == OWN else 404


def change_own_upload(role: str, state: PhotoStatus | None) -> int | str:
    if role == ANON:
        return 401
    return OK if role == OWN else 404


POLICY: dict[tuple[str, str], Rule] = {
    ("upload.api_create", "POST"): announce,
    ("upload.api_upload", "GET"): own_upload,
    ("upload.api_append", "PATCH"): change_own_upload,
    ("upload.api_append", "PUT"): change_own_upload,
    ("upload.api_discard", "DELETE"): change_own_upload,
}

BODIES: dict[str, dict[str, str]] = {"upload.api_create": {"filename": "bruecke.jpg", "size": "1000"}}


def values(users: dict[str, int], photos: dict[PhotoStatus, int]) -> dict[str, Any]:
    """A half-sent upload of the member's."""
    member = db.session.get(User, users[OWN])
    uploads = ResumableUploads(Path(current_app.config["STAGING_DIR"]), int(current_app.config["MAX_UPLOAD_BYTES"]))
    upload = uploads.create(member.id, "halb.jpg", 5000, member.association_id)
    return {"upload_id": upload.id}
