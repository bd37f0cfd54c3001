"""One blueprint per audience, and the helpers every template may use."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

STATUS_LABELS = {
    "processing": "wird verarbeitet",
    "submitted": "eingereicht, wartet auf Prüfung",
    "in_review": "in Prüfung",
    "published": "veröffentlicht",
    "returned": "zurückgegeben",
    "rejected": "abgelehnt",
    "withdrawn": "zurückgezogen",
    "failed": "kein Bild möglich",
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(str(status), str(status))


def decimal(value: float, digits: int = 1) -> str:
    """German decimal comma ("4,9 mm"); whole numbers without decimals ("f/8")."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return text.replace(".", ",")


PEOPLE_LABELS = {
    "none": "keine erkennbaren Personen",
    "consent": "erkennbare Personen, Einwilligung liegt vor",
    "public_event": "erkennbare Personen bei einer öffentlichen Veranstaltung (KUG §23)",
    "unknown": "noch nicht angegeben",
}


def people_label(value: str) -> str:
    return PEOPLE_LABELS.get(str(value), str(value))


def page_number() -> int:
    """``?page=`` as a sane page number: 1 for nonsense, capped so no query gets an absurd offset."""
    from flask import request

    return min(max(request.args.get("page", 1, type=int) or 1, 1), 100_000)


class BoundedInt(IntegerConverter):
    """``<int:…>`` in routes, but only numbers a database id can be: a larger one is a 404, not a 500."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**53)
        super().__init__(url_map, *args, **kwargs)


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedInt
    from .. import workflow
    from ..auth import can_manage
    from . import (
        account,
        admin,
        auth,
        curate,
        exhibitions,
        exports,
        gallery,
        jury,
        media,
        photos,
        search,
        selection,
        upload,
    )

    for module in (account, admin, auth, curate, exhibitions, exports, gallery, jury, media, photos, search,
                   selection, upload):
        app.register_blueprint(module.bp)
    app.jinja_env.globals.update(
        status_label=status_label, can_manage=can_manage, can_edit=workflow.can_edit, people_label=people_label,
        action_label=lambda action: workflow.ACTION_LABELS[action][0],
        action_needs_reason=lambda action: workflow.ACTIONS[action][2],
        licence_label=workflow.licence_label,
    )
    app.jinja_env.filters["decimal"] = decimal
