"""Access rules for the exports of an exhibition (print package, catalogue, contact sheet): curators and admins."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from archive import exports
from archive.models import Exhibition, ExhibitionItem, Export, ExportStatus, PhotoStatus, User, db
from archive.services import get_store
from tests.access_rules import CURATOR, Rule, staff_may, staff_page

POLICY: dict[tuple[str, str], Rule] = {
    ("exports.create", "POST"): staff_may,
    ("exports.detail", "GET"): staff_page,
    ("exports.download", "GET"): staff_page,
}

BODIES: dict[str, dict[str, str]] = {"exports.create": {"kind": "contact_sheet", "language": "de"}}


def values(users: dict[str, int], photos: dict[PhotoStatus, int]) -> dict[str, Any]:
    """An exhibition of every test photo with a finished export of it (a real file in the store). When the
    exhibitions' policy made an exhibition already, the URLs keep using its ``exhibition_id``."""
    others = db.session.scalar(select(Exhibition.id).limit(1))
    exhibition = Exhibition(slug="matrix-exporte", title="Exporte im Test", created_by_id=users[CURATOR])
    db.session.add(exhibition)
    db.session.flush()
    for position, photo_id in enumerate(photos.values(), start=1):
        db.session.add(ExhibitionItem(exhibition_id=exhibition.id, photo_id=photo_id, position=position))
    db.session.commit()
    export = exports.request_export(db.session, exhibition, "contact_sheet", "de", db.session.get(User, users[CURATOR]))
    exports.run_export(db.session, get_store(), current_app.config, export.id, base_url="http://localhost")
    assert db.session.get(Export, export.id).status == ExportStatus.DONE
    return {"export_id": export.id} if others is not None else {"export_id": export.id, "exhibition_id": exhibition.id}
