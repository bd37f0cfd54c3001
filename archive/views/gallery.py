"""The public face: what visitors see without logging in."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..models import Photo, PhotoStatus, db

bp = Blueprint("gallery", __name__)


@bp.get("/")
def index() -> Any:
    photos = db.session.scalars(
        select(Photo).where(Photo.status == PhotoStatus.PUBLISHED)
        .options(selectinload(Photo.derivatives), selectinload(Photo.association))
        .order_by(Photo.created_at.desc()).limit(48)
    ).all()
    return render_template("gallery/index.html", photos=photos)
