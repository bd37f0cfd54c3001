"""Access rules for the exhibition routes (and their exports): filled in with the routes."""

from __future__ import annotations

from tests.access_rules import Rule, public, staff_page

POLICY: dict[tuple[str, str], Rule] = {
    ("exhibitions.manage", "GET"): staff_page,
    ("exhibitions.public_index", "GET"): public,
}
