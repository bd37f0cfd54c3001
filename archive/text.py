"""Names people type (a list, a tag, a person): read one way everywhere."""

from __future__ import annotations

import unicodedata


def clean_text(value: str | None) -> str:
    """One spelling for a typed name: NFC (so "Brücke" typed on a Mac and on Windows is the same word), inner
    whitespace collapsed, ends trimmed."""
    return " ".join(unicodedata.normalize("NFC", value or "").split())
