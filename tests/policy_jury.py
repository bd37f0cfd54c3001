"""Access rules for the jury routes: filled in with the routes."""

from __future__ import annotations

from tests.access_rules import Rule, staff_page

POLICY: dict[tuple[str, str], Rule] = {("jury.rounds", "GET"): staff_page}
