"""Serving images: every request is checked against who may see which photo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, redirect, request

from ..auth import visible_photo_or_404
from ..errors import Unavailable
from ..models import PhotoStatus
from ..services import get_store
from ..storage import ObjectNotFound, StorageUnavailable

bp = Blueprint("media", __name__)

EXTENSIONS = {"jpg": "jpeg", "webp": "webp"}
CHUNK = 256 * 1024


@bp.get("/media/<int:photo_id>/<size>.<ext>")
def derivative(photo_id: int, size: str, ext: str) -> Any:
    photo = visible_photo_or_404(photo_id)
    rendition = photo.derivative(size, EXTENSIONS.get(ext, ""))
    if rendition is None:
        abort(404)
    response = Response(mimetype="image/jpeg" if rendition.fmt == "jpeg" else "image/webp")
    response.set_etag(rendition.etag)
    # Public images may be cached anywhere; unpublished ones only by the viewer's browser, rechecked each time.
    if photo.status == PhotoStatus.PUBLISHED:
        response.headers["Cache-Control"] = f"public, max-age={int(current_app.config['MEDIA_MAX_AGE'])}"
    else:
        response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.make_conditional(request)
    if response.status_code == 304:
        return response
    response.response = _stream(_open(rendition.key))
    response.content_length = rendition.size_bytes
    return response


@bp.get("/photos/<int:photo_id>/original")
def original(photo_id: int) -> Any:
    """Originals go only to the owning association, curators and admins, always as a download."""
    photo = visible_photo_or_404(photo_id, manage=True)
    name = _download_name(photo.original_filename, photo.format)
    url = get_store().download_url(photo.original_key, name, expires=300)
    if url:  # S3: a short-lived signed link; the bucket itself stays private
        return redirect(url, code=303)
    response = Response(_stream(_open(photo.original_key)), mimetype=photo.mime_type)
    response.content_length = photo.size_bytes
    response.headers["Content-Disposition"] = _attachment(name)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _open(key: str) -> IO[bytes]:
    """Open before answering, so a missing object is a 404 and a store outage a 503, not a broken body."""
    try:
        return get_store().open(key)
    except ObjectNotFound:
        abort(404)
    except StorageUnavailable as error:
        raise Unavailable("storage_unavailable",
                          "Der Fotospeicher ist gerade nicht erreichbar. Bitte versuchen Sie es gleich noch einmal.",
                          "The photo storage cannot be reached right now. Please try again shortly.") from error


def _stream(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _download_name(filename: str, fmt: str) -> str:
    stem = filename.rsplit(".", 1)[0] if filename else "foto"
    ext = {"jpeg": "jpg", "heif": "heic"}.get(fmt, fmt)
    return f"{stem}.{ext}"


def _attachment(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
