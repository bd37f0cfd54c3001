"""(being built)"""

from __future__ import annotations

from flask import Blueprint

from ..auth import curators_only

bp = Blueprint("exhibitions", __name__)


@bp.get("/curate/exhibitions")
@curators_only
def manage() -> str:
    return "(being built)"


@bp.get("/ausstellungen")
def public_index() -> str:
    return "(being built)"
