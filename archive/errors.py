"""The project's own errors: what callers catch, and what users are told.

Every refusal carries a stable ``code`` (for scripts and tests) and the reason in German and English,
written for volunteers: what happened and what to do next.
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Base of every error the archive raises on purpose."""


class Refusal(ArchiveError):
    """Input we will not accept. Shown to the user as a 4xx with both messages."""

    status = 422

    def __init__(self, code: str, de: str, en: str, *, status: int | None = None) -> None:
        super().__init__(en)
        self.code = code
        self.de = de
        self.en = en
        if status is not None:
            self.status = status

    def message(self, language: str = "de") -> str:
        return self.en if language.startswith("en") else self.de

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "de": self.de, "en": self.en}


class Unavailable(Refusal):
    """A service we depend on (object store, database) is down: try again shortly. Nothing was kept."""

    status = 503

    def __init__(self, code: str, de: str, en: str, *, retry_after: int = 30) -> None:
        super().__init__(code, de, en)
        self.retry_after = retry_after


def database_unavailable() -> Unavailable:
    return Unavailable(
        "database_unavailable",
        "Die Datenbank ist gerade überlastet oder nicht erreichbar. Es wurde nichts gespeichert. "
        "Bitte versuchen Sie es in einer Minute noch einmal.",
        "The database is busy or cannot be reached right now. Nothing was saved. Please try again in a minute.",
    )


def changed_meanwhile() -> Refusal:
    return Refusal(
        "changed_meanwhile",
        "Dieses Foto wurde gerade von jemand anderem geändert. Es wurde nichts gespeichert. Bitte laden Sie die "
        "Seite neu und versuchen Sie es noch einmal.",
        "Someone else changed this photo a moment ago. Nothing was saved. Please reload the page and try again.",
        status=409,
    )
