"""Access rules for the selection routes (ratings, shortlists): filled in with the routes."""

from __future__ import annotations

from tests.access_rules import Rule, staff_page

POLICY: dict[tuple[str, str], Rule] = {("selection.shortlists", "GET"): staff_page}
