"""Access rules for the exhibition routes: the curators' list and editor (curators and admins only) and the public
pages. The matrix asks the public page of a *draft* exhibition: curators and admins see it (with the "Entwurf"
banner), everyone else gets a 404 (tests/test_exhibitions.py covers published exhibitions)."""

from __future__ import annotations

from typing import Any

from archive.models import Exhibition, ExhibitionItem, PhotoStatus, db
from tests.access_rules import ADMIN, CURATOR, Rule, public, staff_may, staff_page


def staff_or_404(role: str, state: PhotoStatus | None) -> int | str:
    """A draft's public page: only curators and admins; its existence does not leak to anyone else."""
    return 200 if role in (CURATOR, ADMIN) else 404


POLICY: dict[tuple[str, str], Rule] = {
    ("exhibitions.manage", "GET"): staff_page,
    ("exhibitions.create", "POST"): staff_may,
    ("exhibitions.editor", "GET"): staff_page,
    ("exhibitions.update", "POST"): staff_may,
    ("exhibitions.add_photos", "POST"): staff_may,
    ("exhibitions.caption", "POST"): staff_may,
    ("exhibitions.move", "POST"): staff_may,
    ("exhibitions.order", "POST"): staff_may,
    ("exhibitions.remove", "POST"): staff_may,
    ("exhibitions.publish", "POST"): staff_may,
    ("exhibitions.unpublish", "POST"): staff_may,
    ("exhibitions.public_index", "GET"): public,
    ("exhibitions.public_page", "GET"): staff_or_404,
}

BODIES: dict[str, dict[str, str]] = {
    "exhibitions.create": {"title": "Rathaus 2026", "venue": "Rathaus Ludwigshafen", "starts_on": "2026-05-12",
                           "ends_on": "2026-06-30"},
    "exhibitions.update": {"title": "Brunch 2026 (geändert)", "intro": "**Neu**"},
    "exhibitions.add_photos": {"source": "ids", "photo_ids": "1, 2"},
    "exhibitions.caption": {"caption": "Eine eigene Bildunterschrift"},
    "exhibitions.move": {"direction": "down"},
    "exhibitions.order": {"item_ids": "0"},
}


def values(users: dict[str, int], photos: dict[PhotoStatus, int]) -> dict[str, Any]:
    """A draft exhibition with one item per photo state (the editor shows every kind; the page only published)."""
    exhibition = Exhibition(title="Partnerschaftsbrunch 2026", slug="partnerschaftsbrunch-2026",
                            venue="Pfalzbau Ludwigshafen", created_by_id=users[CURATOR],
                            intro="Fotos aus **allen** Partnerstädten.")
    db.session.add(exhibition)
    for position, photo_id in enumerate(photos.values(), start=1):
        exhibition.items.append(ExhibitionItem(photo_id=photo_id, position=position, caption=""))
    db.session.commit()
    return {"exhibition_id": exhibition.id, "item_id": exhibition.items[0].id, "slug": exhibition.slug}
