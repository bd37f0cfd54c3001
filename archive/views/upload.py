"""The upload page: many files at once; each gets its own answer.

Two ways in, one pipeline (archive/ingest.py):

- the form post (``POST /upload``): works without JavaScript, every file in one request;
- the chunk API (``/api/uploads``, archive/resumable.py), which the page's script uses: each file on its own,
  in chunks of a few MB, resumed from the archive's offset after a dropped connection.

Both take the batch's defaults (credit, licence, people shown, minors, place, tags) for every new photo.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..auth import can_view
from ..errors import Refusal, Unavailable
from ..errors_web import language, wants_json
from ..ingest import Ingest, IngestResult
from ..metrics import count_upload
from ..models import Association, Photo, Place, db, parse_id
from ..photo_forms import rights_change
from ..resumable import CHUNK_SIZE, OffsetMismatch, ResumableUploads, Upload, remove_abandoned
from ..services import get_jobs, get_store
from ..text import clean_text
from ..vocabulary import TAG_NAME_MAX, list_places, list_tags
from ..workflow import RightsChange, update_photo

bp = Blueprint("upload", __name__)

# The batch form's fields, as the API keeps them until the file is complete.
BATCH_FIELDS = ("credit", "licence", "people", "minors", "place", "tags")
MAX_TAGS = 30


def _target_association(data: Mapping[str, Any] | None = None) -> Association:
    """Members upload for their own association; curators and admins choose one."""
    if current_user.sees_everything:
        source = request.form if data is None else data
        slug = source.get("association") or request.args.get("association")
        association = (db.session.scalar(select(Association).where(Association.slug == str(slug)))
                       if slug else None)
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
    return render_template("upload/form.html", associations=associations,
                           places=[row.place for row in list_places(db.session)],
                           tags=[row.tag.name for row in list_tags(db.session)], chunk_size=CHUNK_SIZE)


@bp.post("/upload")
@login_required
def receive() -> Any:
    association = _target_association()
    defaults, words = batch_defaults(request.form)  # refused before anything is stored
    files = [f for f in request.files.getlist("photos") if f.filename or f.content_length]
    if not files:
        raise Refusal("no_files", "Bitte wählen Sie mindestens ein Foto aus.", "Please choose at least one photo.",
                      status=400)
    ingest = Ingest(db.session, get_store(), current_app.config, get_jobs().enqueue_processing)
    results = [_as_seen_by_uploader(ingest.ingest(f.stream, f.filename or "", association, current_user))
               for f in files]
    _apply_defaults(defaults, words, results)
    status = _status(results)
    retry = [r.refusal.retry_after for r in results if isinstance(r.refusal, Unavailable)]
    headers = {"Retry-After": str(max(retry))} if status == 503 and retry else {}
    if wants_json():
        return jsonify({"results": [r.as_dict() for r in results]}), status, headers
    return render_template("upload/results.html", results=results, association=association,
                           lang=language()), status, headers


# ---------------------------------------------------------------------------------------------------------
# The batch's defaults
# ---------------------------------------------------------------------------------------------------------


def batch_defaults(form: Mapping[str, Any]) -> tuple[RightsChange, list[str]]:
    """The batch form (credit, licence, people, minors, place, tags) as a change for each new photo and the tags
    to add. Refuses a licence, a place or a tag that is not possible, naming it."""
    change = rights_change(form, upload_defaults=True)
    raw_place = str(form.get("place") or "").strip()
    if raw_place:
        place_id = parse_id(raw_place)
        if place_id is None or db.session.get(Place, place_id) is None:
            raise Refusal("unknown_place", "Diesen Ort gibt es nicht in der Liste. Bitte wählen Sie einen aus der "
                          "Liste oder lassen Sie das Feld leer.",
                          "This place is not in the list. Please choose one from the list or leave it empty.",
                          status=422)
        change.place_id = place_id
    words: list[str] = []
    for raw in str(form.get("tags") or "").split(","):
        word = clean_text(raw)
        if not word or word.casefold() in {w.casefold() for w in words}:
            continue
        if len(word) > TAG_NAME_MAX:
            raise Refusal("tag_too_long", f"Ein Schlagwort darf höchstens {TAG_NAME_MAX} Zeichen lang sein: "
                          f"„{word[:40]}…“.",
                          f"A tag may be at most {TAG_NAME_MAX} characters long: '{word[:40]}…'.", status=422)
        words.append(word)
    if len(words) > MAX_TAGS:
        raise Refusal("too_many_tags", f"Bitte geben Sie höchstens {MAX_TAGS} Schlagwörter für eine Sendung an.",
                      f"Please give at most {MAX_TAGS} tags for one batch.", status=422)
    return change, words


def _apply_defaults(defaults: RightsChange, words: list[str], results: list[IngestResult]) -> None:
    """What the uploader said for the whole batch goes on each new photo; the batch's tags are added to the
    photo's own (keywords from the file stay)."""
    if not words and defaults.place_id is None and all(
            getattr(defaults, name) is None for name in ("credit", "licence", "people", "minors")):
        return
    for result in results:
        photo = db.session.get(Photo, result.photo_id) if result.outcome == "archived" else None
        if photo is None:
            continue
        change = defaults
        if words:
            change = replace(defaults, keywords=[t.name for t in photo.tags if not t.controlled] + words)
        update_photo(db.session, photo, change, current_user)


def _as_seen_by_uploader(result: IngestResult) -> IngestResult:
    """A duplicate of another association's unpublished photo must not reveal that photo."""
    count_upload(result)  # every file of both ways in passes here once
    if result.outcome == "duplicate" and result.photo_id is not None:
        existing = db.session.get(Photo, result.photo_id)
        if existing is None or not can_view(current_user, existing):
            return replace(result, photo_id=None)
    return result


def _one_status(result: IngestResult) -> int:
    if result.outcome == "archived":
        return 201
    if result.outcome == "refused" and result.refusal is not None:
        return result.refusal.status
    return 200


def _status(results: list[IngestResult]) -> int:
    """201 when something new was archived; a lone refusal keeps its own 4xx/503."""
    if any(r.outcome == "archived" for r in results):
        return 201
    if all(r.outcome == "refused" for r in results) and results[0].refusal is not None:
        return results[0].refusal.status
    return 200


# ---------------------------------------------------------------------------------------------------------
# The chunk API: POST /api/uploads, GET/PATCH/PUT/DELETE /api/uploads/<id>
# ---------------------------------------------------------------------------------------------------------


def _api_login(view: Callable[..., Any]) -> Callable[..., Any]:
    """A script gets a 401 in words, not the login page."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            refusal = Refusal("login_required", "Bitte melden Sie sich an oder senden Sie einen API-Schlüssel.",
                              "Please log in or send an API token.", status=401)
            return jsonify({"error": refusal.as_dict()}), 401, {"WWW-Authenticate": 'Bearer realm="brucken"'}
        return view(*args, **kwargs)

    return checked


def _uploads() -> ResumableUploads:
    return ResumableUploads(Path(current_app.config["STAGING_DIR"]), int(current_app.config["MAX_UPLOAD_BYTES"]))


def _expire_seconds() -> float:
    return float(current_app.config["UPLOAD_RESUME_HOURS"]) * 3600


def _request_data() -> Mapping[str, Any]:
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        return {str(k): v if isinstance(v, str) else str(v) for k, v in data.items()
                if v is not None and not isinstance(v, dict | list)}
    return request.form


def _result_json(result: dict[str, Any]) -> dict[str, Any]:
    """The stored ingest result, with the refusal in the language of this request and the photo's links."""
    data = dict(result)
    reason = data.get("reason")
    if reason:
        data["message"] = reason["en"] if language().startswith("en") else reason["de"]
    if data.get("photo_id"):
        data["photo_url"] = url_for("photos.detail", photo_id=data["photo_id"])
        if data.get("outcome") == "archived":
            data["edit_url"] = url_for("photos.edit", photo_id=data["photo_id"])
    return data


def _upload_answer(upload: Upload, status: int = 200) -> Response:
    data: dict[str, Any] = {"id": upload.id, "filename": upload.filename, "size": upload.size,
                            "received": upload.received, "chunk_size": CHUNK_SIZE, "complete": upload.complete,
                            "url": url_for("upload.api_upload", upload_id=upload.id)}
    if upload.result is not None:
        data["result"] = _result_json(upload.result)
    response = jsonify(data)
    response.status_code = status
    response.headers["Upload-Offset"] = str(upload.received)
    response.headers["Upload-Length"] = str(upload.size)
    response.headers["Cache-Control"] = "no-store"
    return response


def _bad_request(de: str, en: str) -> Refusal:
    return Refusal("bad_request", de, en, status=400)


@bp.post("/api/uploads")
@_api_login
def api_create() -> Any:
    """Announces a file: name, size in bytes, optionally its SHA-256, and the batch's defaults."""
    data = _request_data()
    association = _target_association(data)
    filename = str(data.get("filename") or "").strip()
    raw_size = str(data.get("size") if data.get("size") is not None else "").strip()
    if not filename or not raw_size.isascii() or not raw_size.isdigit():
        raise _bad_request("Bitte nennen Sie den Dateinamen (filename) und die Größe in Byte (size).",
                           "Please give the file name (filename) and its size in bytes (size).")
    batch_defaults(data)  # a wrong licence, place or tag is refused before any byte is sent
    sha256 = str(data.get("sha256") or "").strip().lower() or None
    uploads = _uploads()
    remove_abandoned(uploads.root.parent, _expire_seconds())
    upload = uploads.create(current_user.id, filename, int(raw_size[:15]), association.id, sha256=sha256,
                            defaults={name: str(data.get(name) or "") for name in BATCH_FIELDS})
    response = _upload_answer(upload, 201)
    response.headers["Location"] = url_for("upload.api_upload", upload_id=upload.id)
    return response


@bp.get("/api/uploads/<upload_id>")
@_api_login
def api_upload(upload_id: str) -> Any:
    """How far an upload got (to resume after a dropped connection), and its result once complete."""
    return _upload_answer(_uploads().get(current_user.id, upload_id))


@bp.route("/api/uploads/<upload_id>", methods=["PATCH", "PUT"])
@_api_login
def api_append(upload_id: str) -> Any:
    """Appends the request's body at ``Upload-Offset``. The last chunk archives the file; an empty chunk at the
    end finishes again after a 503."""
    raw = request.headers.get("Upload-Offset", "").strip()
    if not raw.isascii() or not raw.isdigit():
        raise _bad_request("Bitte senden Sie im Kopf „Upload-Offset“, ab welchem Byte dieses Stück gehört.",
                           "Please send the 'Upload-Offset' header: the byte this chunk starts at.")
    uploads = _uploads()
    try:
        upload = uploads.append(current_user.id, upload_id, int(raw[:15]), request.stream,
                                length=request.content_length)
    except OffsetMismatch as mismatch:
        refusal = mismatch.refusal()
        response = jsonify({"error": refusal.as_dict(), "offset": mismatch.upload.received,
                            "message": refusal.message(language())})
        response.status_code = 409
        response.headers["Upload-Offset"] = str(mismatch.upload.received)
        return response
    if upload.received < upload.size:
        return _upload_answer(upload)
    unavailable: list[dict[str, Any]] = []

    def archive(handle: IO[bytes], done: Upload) -> dict[str, Any]:
        result = _archive_upload(handle, done)
        if result["status"] == Unavailable.status:
            unavailable.append(result)
        return result

    upload = uploads.finish(current_user.id, upload_id, archive)
    if unavailable:
        reason = unavailable[0]["reason"]
        response = jsonify({"error": reason, "offset": upload.received,
                            "message": reason["en"] if language().startswith("en") else reason["de"]})
        response.status_code = 503
        response.headers["Retry-After"] = "30"
        response.headers["Upload-Offset"] = str(upload.received)
        return response
    return _upload_answer(upload, int(upload.result["status"]) if upload.result else 200)


@bp.delete("/api/uploads/<upload_id>")
@_api_login
def api_discard(upload_id: str) -> Any:
    """Cancels an upload: its bytes are gone at once."""
    _uploads().discard(current_user.id, upload_id)
    return "", 204


def _archive_upload(handle: IO[bytes], upload: Upload) -> dict[str, Any]:
    """The complete file through the same pipeline as a form upload, then the batch's defaults."""
    if current_user.sees_everything:
        association = db.session.get(Association, upload.association_id)
    else:
        association = current_user.association
    if association is None:
        abort(403)
    ingest = Ingest(db.session, get_store(), current_app.config, get_jobs().enqueue_processing)
    result = _as_seen_by_uploader(ingest.ingest(handle, upload.filename, association, current_user))
    data = result.as_dict()
    data["status"] = _one_status(result)
    try:
        defaults, words = batch_defaults(upload.defaults)
        _apply_defaults(defaults, words, [result])
    except Refusal as refusal:  # a place removed meanwhile: the photo is archived, its details wait
        db.session.rollback()
        data["warning"] = refusal.as_dict()
    return data
