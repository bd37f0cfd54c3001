"""An association's photos: the grid and the photo page, for people who are logged in."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..auth import visible_photo_or_404
from ..models import Association, Photo, PhotoStatus, db

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
    processing = any(p.status == PhotoStatus.PROCESSING for p in photos)
    associations = (db.session.scalars(select(Association).order_by(Association.name)).all()
                    if current_user.sees_everything else [])
    return render_template("photos/grid.html", photos=photos, association=association, total=total,
                           page=page, pages=max((total + PER_PAGE - 1) // PER_PAGE, 1),
                           processing=processing, associations=associations)


@bp.get("/photos/<int:photo_id>")
def detail(photo_id: int) -> Any:
    photo = visible_photo_or_404(photo_id)
    return render_template("photos/detail.html", photo=photo)
