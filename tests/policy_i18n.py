"""Access rules for the language switch: anyone may choose the language; it only sets a cookie."""

from __future__ import annotations

from typing import Any

from archive.models import PhotoStatus
from tests.access_rules import Rule

POLICY: dict[tuple[str, str], Rule] = {
    ("i18n.switch", "GET"): lambda role, state: 303,
}


def values(users: dict[str, int], photos: dict[PhotoStatus, int]) -> dict[str, Any]:
    return {"lang": "en"}
