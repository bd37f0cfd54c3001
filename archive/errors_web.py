"""How refusals and HTTP errors reach people: an HTML page or JSON, always with the reason in words."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .errors import Refusal, Unavailable, changed_meanwhile, database_unavailable
from .i18n import current_language

MESSAGES = {
    400: ("Die Anfrage ist unvollständig oder fehlerhaft.", "The request is incomplete or malformed."),
    403: ("Dafür fehlt Ihnen die Berechtigung.", "You are not allowed to do this."),
    404: ("Diese Seite oder dieses Foto gibt es nicht (oder nicht für Sie).",
          "This page or photo does not exist (or not for you)."),
    405: ("Diese Aktion ist hier nicht möglich.", "This action is not possible here."),
    413: ("Die Dateien sind zusammen zu groß. Bitte laden Sie weniger auf einmal hoch.",
          "The files are too large together. Please upload fewer at once."),
}


def language() -> str:
    """The language this request is answered in (see archive.i18n)."""
    return current_language()


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _answer(refusal: Refusal) -> Any:
    if wants_json():
        response = jsonify({"error": refusal.as_dict()})
    else:
        response = render_template("error.html", message=refusal.message(language()), refusal=refusal)
    response = (response, refusal.status)
    if isinstance(refusal, Unavailable):
        response = (*response, {"Retry-After": str(refusal.retry_after)})
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(Refusal)
    def _refusal(error: Refusal) -> Any:
        return _answer(error)

    def _database(error: Exception) -> Any:
        from .auth import login_manager
        from .models import db

        db.session.rollback()
        app.logger.warning("database unavailable: %s", error)
        # The page must render without the database: show it as to a visitor.
        g._login_user = login_manager.anonymous_user()
        return _answer(database_unavailable())

    from .models import DATABASE_UNAVAILABLE

    for kind in DATABASE_UNAVAILABLE:
        app.register_error_handler(kind, _database)

    @app.errorhandler(OSError)
    def _disk_full(error: OSError) -> Any:
        # A request body spooled to the staging disk (archive/upload_stream.py) while that disk fills up: the
        # person is told in words and may try again; anything else about files stays a 500 (a bug to see).
        from .ingest import disk_full, staging_full

        if not disk_full(error):
            raise error
        return _answer(staging_full(error))

    @app.errorhandler(StaleDataError)
    def _changed_meanwhile(_error: StaleDataError) -> Any:
        from .models import db

        db.session.rollback()
        return _answer(changed_meanwhile())

    @app.errorhandler(DataError)
    def _value_the_database_refuses(error: DataError) -> Any:
        # A value no person types, that PostgreSQL refuses (a NUL character, a number beyond its range): the
        # request's input, not the archive, is at fault.
        from .models import db

        db.session.rollback()
        app.logger.info("input the database refuses: %s", error.orig)
        return _answer(Refusal("invalid_characters",
                               "Die Eingabe enthält unzulässige Zeichen (zum Beispiel NUL) oder Werte.",
                               "The input contains characters (such as NUL) or values that are not allowed.",
                               status=400))

    @app.errorhandler(CSRFError)
    def _csrf(_error: CSRFError) -> Any:
        return _answer(Refusal("form_expired",
                               "Das Formular ist abgelaufen oder unvollständig. Bitte laden Sie die Seite neu "
                               "und senden Sie es noch einmal.",
                               "The form has expired or is incomplete. Please reload the page and send it again.",
                               status=400))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error: RequestEntityTooLarge) -> Any:
        de, en = MESSAGES[413]
        return _answer(Refusal("request_too_large", de, en, status=413))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        if error.code not in MESSAGES:
            return error
        de, en = MESSAGES[error.code]
        return _answer(Refusal(f"http_{error.code}", de, en, status=error.code))
