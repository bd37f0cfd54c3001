"""Serving images: every request is checked against who may see which photo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, redirect, request

from .. import public_media
from ..auth import visible_photo_or_404
from ..errors import Unavailable
from ..models import PhotoStatus
from ..services import get_store
from ..storage import ObjectNotFound, StorageUnavailable, attachment_disposition

bp = Blueprint("media", __name__)

EXTENSIONS = {"jpg": "jpeg", "webp": "webp"}


@bp.get("/media/<int:photo_id>/<size>.<ext>")
def derivative(photo_id: int, size: str, ext: str) -> Any:
    photo = visible_photo_or_404(photo_id)
    rendition = photo.derivative(size, EXTENSIONS.get(ext, ""))
    if rendition is None:
        abort(404)
    if photo.status == PhotoStatus.PUBLISHED:
        cdn = _cdn_redirect(rendition.key)
        if cdn is not None:
            return cdn
    response = Response(mimetype="image/jpeg" if rendition.fmt == "jpeg" else "image/webp")
    response.set_etag(rendition.etag)
    response.headers["Cache-Control"] = _cache_control(public=photo.status == PhotoStatus.PUBLISHED)
    response.make_conditional(request)
    if response.status_code == 304:
        return response
    response.response = _chunks(rendition.key)
    response.content_length = rendition.size_bytes
    return response


@bp.get("/photos/<int:photo_id>/original")
def original(photo_id: int) -> Any:
    """Originals go only to the owning association, curators and admins, always as a download."""
    photo = visible_photo_or_404(photo_id, manage=True)
    name = _download_name(photo.original_filename, photo.format)
    if current_app.config["S3_REDIRECT_DOWNLOADS"]:
        url = get_store().download_url(photo.original_key, name, expires=300)
        if url:  # S3: a short-lived signed link; the bucket itself stays private
            return redirect(url, code=303)
    response = Response(_chunks(photo.original_key), mimetype=photo.mime_type)
    response.content_length = photo.size_bytes
    response.headers["Content-Disposition"] = attachment_disposition(name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _cdn_redirect(key: str) -> Response | None:
    """With MEDIA_CDN_URL: a published photo's image from the CDN, once its public copy is there (made by the
    worker after publication); until then, and for everything else, the app streams it as without a CDN. The
    redirect itself is rechecked like the image, so a photo taken offline stops being sent there at once."""
    config = current_app.config
    url = public_media.public_url(config, key)
    if url is None or not public_media.copy_exists(get_store(), config, key):
        return None
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = _cache_control(public=True)
    return response


def _cache_control(public: bool) -> str:
    """Unpublished images only in the viewer's own browser, rechecked each time. Public ones are rechecked
    too unless MEDIA_MAX_AGE allows otherwise, so an image taken offline is gone at once."""
    if not public:
        return "private, no-cache"
    max_age = int(current_app.config["MEDIA_MAX_AGE"])
    return f"public, max-age={max_age}" if max_age > 0 else "public, no-cache"


def _chunks(key: str) -> Iterator[bytes]:
    """Open before answering, so a missing object is a 404 and a store outage a 503, not a broken body."""
    try:
        return get_store().iter_chunks(key)
    except ObjectNotFound:
        abort(404)
    except StorageUnavailable as error:
        raise Unavailable("storage_unavailable",
                          "Der Fotospeicher ist gerade nicht erreichbar. Bitte versuchen Sie es gleich noch einmal.",
                          "The photo storage cannot be reached right now. Please try again shortly.") from error


def _download_name(filename: str, fmt: str) -> str:
    stem = filename.rsplit(".", 1)[0] if filename else "foto"
    ext = {"jpeg": "jpg", "heif": "heic"}.get(fmt, fmt)
    return f"{stem}.{ext}"
