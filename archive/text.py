"""Names people type (a list, a tag, a person): read one way everywhere."""

from __future__ import annotations

import unicodedata


def clean_text(value: str | None) -> str:
    """One spelling for a typed name: NFC (so "Brücke" typed on a Mac and on Windows is the same word), inner
    whitespace collapsed, ends trimmed."""
    return " ".join(unicodedata.normalize("NFC", value or "").split())


# Invisible characters that reorder or hide text: right-to-left overrides and isolates (a file name "‮gpj.exe"
# shows as "exe.jpg"), and the byte order mark.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"))


def clean_typed(value: str | None, *, multiline: bool = False) -> str:
    """Free text people type (a title, a caption, a credit), made safe to store, show and log.

    NFC; line ends become ``\\n`` (or a space, unless ``multiline``); tabs a space; other control characters and
    bidirectional overrides are dropped; the ends are trimmed. Markup is left as it is: escaping is the job of
    whatever shows the text, and "<3" or "a < b" are words people write.
    """
    text = unicodedata.normalize("NFC", value or "").translate(_BIDI_CONTROLS)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if not multiline:
        text = text.replace("\n", " ")
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) != "Cc").strip()


def shorten_filename(name: str, limit: int) -> str:
    """``name`` cut to ``limit`` characters in its stem, so that a long name keeps its extension (``.jpg``)."""
    if len(name) <= limit:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > 10:
        return name[:limit]
    return stem[: limit - len(suffix) - 1] + "." + suffix
