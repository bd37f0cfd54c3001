"""The public face: what visitors see without logging in."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from ..catalog import public_photos
from ..models import db

bp = Blueprint("gallery", __name__)


@bp.get("/")
def index() -> Any:
    return render_template("gallery/index.html", photos=public_photos(db.session))
