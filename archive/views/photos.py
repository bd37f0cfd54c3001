"""An association's photos: the grid and the photo page, for people who are logged in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..auth import visible_photo_or_404
from ..errors import Refusal
from ..models import Association, Photo, PhotoStatus, db, utcnow
from ..reconcile import discard_photo
from ..services import get_store

bp = Blueprint("photos", __name__)

PER_PAGE = 60


@bp.get("/photos")
@login_required
def grid() -> Any:
    query = select(Photo)
    association = None
    if current_user.sees_everything:
        slug = request.args.get("association")
        if slug:
            association = db.session.scalar(select(Association).where(Association.slug == slug))
            if association is None:
                abort(404)
    else:
        association = current_user.association
        if association is None:
            abort(403)
    if association is not None:
        query = query.where(Photo.association_id == association.id)
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    photos = db.session.scalars(
        query.options(selectinload(Photo.derivatives))
        .order_by(Photo.created_at.desc(), Photo.id.desc())
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)
    ).all()
    # Refresh while thumbnails are being made; a photo stuck longer than STALE_MINUTES is left to
    # reconcile, and the page stops asking.
    fresh = utcnow() - timedelta(minutes=int(current_app.config["STALE_MINUTES"]))
    processing = any(p.status == PhotoStatus.PROCESSING and p.created_at > fresh for p in photos)
    associations = (db.session.scalars(select(Association).order_by(Association.name)).all()
                    if current_user.sees_everything else [])
    return render_template("photos/grid.html", photos=photos, association=association, total=total,
                           page=page, pages=max((total + PER_PAGE - 1) // PER_PAGE, 1),
                           processing=processing, associations=associations)


@bp.get("/photos/<int:photo_id>")
def detail(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id)
    return render_template("photos/detail.html", photo=photo)


@bp.post("/photos/<int:photo_id>/discard")
@login_required
def discard(photo_id: int) -> Any:
    """A file no image could be made from can be removed by those who manage it. Other photos go through
    the curators' workflow, not this button."""
    photo = visible_photo_or_404(photo_id, manage=True)
    if photo.status != PhotoStatus.FAILED:
        raise Refusal("not_discardable",
                      "Nur Dateien, aus denen kein Bild entstehen konnte, lassen sich hier entfernen.",
                      "Only files no image could be made from can be removed here.", status=409)
    slug = photo.association.slug
    discard_photo(db.session, get_store(), photo, reason="removed by its owner after failed processing",
                  actor_id=current_user.id)
    flash("Die Datei wurde entfernt. / The file was removed.", "ok")
    return redirect(url_for("photos.grid", association=slug if current_user.sees_everything else None))
