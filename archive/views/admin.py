"""(being built)"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__)


@bp.get("/admin")
def index() -> str:
    return "(being built)"
