"""An association's photos: the grid and the photo page, for people who are logged in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..auth import visible_photo_or_404
from ..catalog import association_photos, being_processed, grid_association
from ..errors import Refusal
from ..models import Association, PhotoStatus, db, utcnow
from ..reconcile import discard_photo
from ..services import get_jobs, get_store

bp = Blueprint("photos", __name__)

@bp.get("/photos")
@login_required
def grid() -> Any:
    try:
        association = grid_association(db.session, current_user, request.args.get("association"))
    except LookupError:
        abort(404)
    except PermissionError:
        abort(403)
    page = association_photos(db.session, association, request.args.get("page", 1, type=int) or 1)
    associations = (db.session.scalars(select(Association).order_by(Association.name)).all()
                    if current_user.sees_everything else [])
    return render_template("photos/grid.html", page=page, association=association,
                           processing=page.still_processing(_fresh_since()), associations=associations)


@bp.get("/photos/<int:photo_id>")
def detail(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id)
    return render_template("photos/detail.html", photo=photo, processing=being_processed(photo, _fresh_since()))


def _fresh_since() -> datetime:
    """Photos processing since before this are stuck: pages stop refreshing for them."""
    return utcnow() - timedelta(minutes=int(current_app.config["STALE_MINUTES"]))


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
    get_jobs().enqueue_indexing()
    flash("Die Datei wurde entfernt. / The file was removed.", "ok")
    return redirect(url_for("photos.grid", association=slug if current_user.sees_everything else None))
