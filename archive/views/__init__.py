"""One blueprint per audience, and the helpers every template may use."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from werkzeug.routing import IntegerConverter

# Lazy: each is translated when a page shows it (str() or Jinja), never stored as it is.
STATUS_LABELS = {
    "processing": _l("wird verarbeitet"),
    "submitted": _l("eingereicht, wartet auf Prüfung"),
    "in_review": _l("in Prüfung"),
    "published": _l("veröffentlicht"),
    "returned": _l("zurückgegeben"),
    "rejected": _l("abgelehnt"),
    "withdrawn": _l("zurückgezogen"),
    "failed": _l("kein Bild möglich"),
}


def german(label: Any) -> str:
    """The German (source) text of a lazy label, whatever the page's language: for texts that must stay German
    (the German half of a Refusal, a German export column)."""
    return str(label._args[0]) if isinstance(label, LazyString) else str(label)


def status_label(status: str, language: str | None = None) -> str:
    """In the page's language; ``language="de"`` for a text that is German whatever the page."""
    label = STATUS_LABELS.get(str(status))
    if label is None:
        return str(status)
    return german(label) if language == "de" else str(label)


def decimal(value: float, digits: int = 1) -> str:
    """A number in the page's language ("4,9 mm" / "4.9 mm"); whole numbers without decimals ("f/8")."""
    return format_decimal(value, format="0" + ("." + "#" * digits if digits else ""))


PEOPLE_LABELS = {
    "none": _l("keine erkennbaren Personen"),
    "consent": _l("erkennbare Personen, Einwilligung liegt vor"),
    "public_event": _l("erkennbare Personen bei einer öffentlichen Veranstaltung (KUG §23)"),
    "unknown": _l("noch nicht angegeben"),
}


def people_label(value: str) -> str:
    label = PEOPLE_LABELS.get(str(value))
    return str(label) if label is not None else str(value)


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
        ops,
        photos,
        search,
        selection,
        upload,
    )

    for module in (account, admin, auth, curate, exhibitions, exports, gallery, jury, media, ops, photos, search,
                   selection, upload):
        app.register_blueprint(module.bp)
    from .. import metrics

    metrics.init_app(app)
    ops.init_app(app)  # after metrics: /healthz and /metrics are answered before anything, the clock included
    app.jinja_env.globals.update(
        status_label=status_label, can_manage=can_manage, can_edit=workflow.can_edit, people_label=people_label,
        action_label=workflow.action_label,
        action_needs_reason=lambda action: workflow.ACTIONS[action][2],
        licence_label=workflow.licence_name,
    )
    app.jinja_env.filters["decimal"] = decimal
