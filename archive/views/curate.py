"""(being built)"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("curate", __name__)


@bp.get("/curate")
def queue() -> str:
    return "(being built)"
