"""The interface's languages: German first, English second, through Flask-Babel catalogues.

The message ids are the German texts themselves (German is the house language and the default), so
``archive/translations/en/LC_MESSAGES/messages.po`` holds the English of every text. The catalogues are
compiled into the instance folder when the app starts (only when a ``.po`` is newer than its ``.mo``):
the package may be read-only, and no compiled file has to be kept in step by hand.

A visitor's language comes from the switch in the page header (a cookie), else from the browser's
preference, else ``DEFAULT_LANGUAGE``.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from babel.messages import mofile, pofile
from flask import Blueprint, Flask, current_app, redirect, request
from flask_babel import Babel, format_date, format_datetime, format_decimal, format_number, format_time, get_locale

SOURCE = Path(__file__).resolve().parent / "translations"
LANGUAGES = ("de", "en")
COOKIE = "lang"
COOKIE_DAYS = 365

bp = Blueprint("i18n", __name__)


def select_language() -> str:
    """``?lang=`` on the address, else the switch's choice, else the browser's preference, else the default."""
    for chosen in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if chosen in LANGUAGES:
            return chosen
    return request.accept_languages.best_match(LANGUAGES) or current_app.config["DEFAULT_LANGUAGE"]


def current_language() -> str:
    """``de`` or ``en`` for the request being answered (``de`` outside a request)."""
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else "de"


def local_time(value: datetime | date | None, with_time: bool = True) -> str:
    """A moment as people here read it: the database keeps UTC, shown in ``TIME_ZONE`` and the page's language
    ("26.11.2026, 14:05" / "Nov 26, 2026, 2:05 PM"). A plain date stays that date."""
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        return format_date(value, "medium")
    if not with_time:
        return format_datetime(value, format_date_pattern())
    return f"{format_datetime(value, format_date_pattern())}, {format_time(value, 'short')}"


def format_date_pattern() -> str:
    from babel.dates import get_date_format

    return get_date_format("medium", locale=get_locale()).pattern


def _safe_target(target: str | None) -> str:
    """Back to the page the switch was used on, and never to another site."""
    from .security import same_site_path

    return same_site_path(target) or "/"


@bp.get("/sprache/<lang>")
def switch(lang: str):  # type: ignore[no-untyped-def]
    """A plain link (works without JavaScript): remember the language and go back."""
    response = redirect(_safe_target(request.args.get("next")), 303)
    if lang in LANGUAGES:
        response.set_cookie(COOKIE, lang, max_age=COOKIE_DAYS * 86400, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    return response


def compile_catalogues(target: Path) -> None:
    """``.po`` → ``.mo`` for every language whose compiled file is missing or older than its source."""
    for source in SOURCE.glob("*/LC_MESSAGES/messages.po"):
        compiled = target / source.relative_to(SOURCE).with_suffix(".mo")
        if compiled.exists() and compiled.stat().st_mtime >= source.stat().st_mtime:
            continue
        compiled.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as handle:
            catalogue = pofile.read_po(handle)
        partial = compiled.with_suffix(".mo.tmp")
        with partial.open("wb") as handle:
            mofile.write_mo(handle, catalogue)
        partial.replace(compiled)  # several workers may start at once: each sees a whole file or none


def init_app(app: Flask) -> None:
    compiled = Path(app.instance_path) / "translations"
    compile_catalogues(compiled)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", app.config["DEFAULT_LANGUAGE"])
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config["TIME_ZONE"])
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled)
    Babel(app, locale_selector=select_language)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(current_language=current_language, local_time=local_time, format_date=format_date,
                                 format_number=format_number, format_decimal=format_decimal)
