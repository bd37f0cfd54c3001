"""(being built)"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("account", __name__)


@bp.get("/account")
def index() -> str:
    return "(being built)"
