"""(being built)"""

from __future__ import annotations

from flask import Blueprint

from ..auth import curators_only

bp = Blueprint("jury", __name__)


@bp.get("/curate/jury")
@curators_only
def rounds() -> str:
    return "(being built)"
