"""Text for CSV files people open in a spreadsheet (the jury's results, the print shop's credits)."""

from __future__ import annotations

from typing import Any


def spreadsheet_safe(value: Any) -> str:
    """Text as a spreadsheet shows it, never as a formula (a title "=HYPERLINK(…)" stays text)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
