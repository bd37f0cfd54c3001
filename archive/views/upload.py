"""The upload page: many files at once; each gets its own answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import select

from ..auth import can_view
from ..errors import Refusal, Unavailable
from ..errors_web import language, wants_json
from ..ingest import Ingest, IngestResult
from ..models import Association, Photo, db
from ..photo_forms import rights_change
from ..services import get_jobs, get_store
from ..workflow import RightsChange, update_photo

bp = Blueprint("upload", __name__)


def _target_association() -> Association:
    """Members upload for their own association; curators and admins choose one."""
    if current_user.sees_everything:
        slug = request.form.get("association") or request.args.get("association")
        association = db.session.scalar(select(Association).where(Association.slug == slug)) if slug else None
        if association is None:
            raise Refusal("association_missing", "Bitte wählen Sie den Verein, dem die Fotos gehören.",
                          "Please choose the association the photos belong to.", status=400)
        return association
    if current_user.association is None:
        abort(403)
    return current_user.association


@bp.get("/upload")
@login_required
def form() -> Any:
    associations = db.session.scalars(select(Association).order_by(Association.name)).all()
    return render_template("upload/form.html", associations=associations)


@bp.post("/upload")
@login_required
def receive() -> Any:
    association = _target_association()
    defaults = rights_change(request.form, upload_defaults=True)  # refused before anything is stored
    files = [f for f in request.files.getlist("photos") if f.filename or f.content_length]
    if not files:
        raise Refusal("no_files", "Bitte wählen Sie mindestens ein Foto aus.", "Please choose at least one photo.",
                      status=400)
    ingest = Ingest(db.session, get_store(), current_app.config, get_jobs().enqueue_processing)
    results = [_as_seen_by_uploader(ingest.ingest(f.stream, f.filename or "", association, current_user))
               for f in files]
    _apply_defaults(defaults, results)
    status = _status(results)
    retry = [r.refusal.retry_after for r in results if isinstance(r.refusal, Unavailable)]
    headers = {"Retry-After": str(max(retry))} if status == 503 and retry else {}
    if wants_json():
        return jsonify({"results": [r.as_dict() for r in results]}), status, headers
    return render_template("upload/results.html", results=results, association=association,
                           lang=language()), status, headers


def _apply_defaults(defaults: RightsChange, results: list[IngestResult]) -> None:
    """What the uploader said for the whole batch (photographer, licence, people) goes on each new photo."""
    if all(getattr(defaults, name) is None for name in ("credit", "licence", "people", "minors")):
        return
    for result in results:
        photo = db.session.get(Photo, result.photo_id) if result.outcome == "archived" else None
        if photo is not None:
            update_photo(db.session, photo, defaults, current_user)


def _as_seen_by_uploader(result: IngestResult) -> IngestResult:
    """A duplicate of another association's unpublished photo must not reveal that photo."""
    if result.outcome == "duplicate" and result.photo_id is not None:
        existing = db.session.get(Photo, result.photo_id)
        if existing is None or not can_view(current_user, existing):
            return replace(result, photo_id=None)
    return result


def _status(results: list[IngestResult]) -> int:
    """201 when something new was archived; a lone refusal keeps its own 4xx/503."""
    if any(r.outcome == "archived" for r in results):
        return 201
    if all(r.outcome == "refused" for r in results) and results[0].refusal is not None:
        return results[0].refusal.status
    return 200
