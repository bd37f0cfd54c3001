"""(being built)"""

from __future__ import annotations

from flask import Blueprint

from ..auth import curators_only

bp = Blueprint("selection", __name__)


@bp.get("/curate/shortlists")
@curators_only
def shortlists() -> str:
    return "(being built)"
