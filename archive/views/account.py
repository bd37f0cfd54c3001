"""A person's own page: their name, password, sessions and personal API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import accounts
from ..auth import active_sessions, current_login_session, end_login_session, sign_in
from ..errors import Refusal
from ..i18n import local_time
from ..models import ApiToken, db

bp = Blueprint("account", __name__)


def when(moment: datetime | None, empty: str | None = None) -> str:
    """A stored (UTC) time in the archive's time zone and the page's language ("03.05.2025, 14:20" /
    "May 3, 2025, 2:20 PM"); ``empty`` (default "–") when there is none."""
    if moment is None:
        return "–" if empty is None else empty
    return local_time(moment)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"when": when, "role_labels": accounts.ROLE_LABELS}


@bp.before_request
@login_required
def _logged_in() -> None:
    """Every page here is the logged-in person's own."""


def _page(new_token: str | None = None, token_name: str = "", error: Refusal | None = None,
          status: int = 200) -> Any:
    user = current_user._get_current_object()
    response = current_app.make_response((render_template(
        "account/index.html", user=user, tokens=accounts.tokens_of(db.session, user), new_token=new_token,
        token_name=token_name, error=error, sessions=active_sessions(db.session, user),
        current_session=current_login_session(), device=device), status))
    response.headers["Cache-Control"] = "no-store"  # a new token is shown on this page once
    return response


@bp.get("/account")
def index() -> Any:
    return _page()


@bp.post("/account/name")
def change_name() -> Any:
    # Only the name is read: role, association and the like are the admins' (archive.views.admin).
    try:
        accounts.change_own_name(db.session, current_user, request.form.get("display_name"))
    except Refusal as refusal:
        return _page(error=refusal, status=refusal.status)
    flash(_("Ihr Name ist gespeichert."), "ok")
    return redirect(url_for("account.index"))


@bp.post("/account/sessions")
def end_other_sessions() -> Any:
    user = current_user._get_current_object()
    accounts.end_sessions(db.session, user, user)
    sign_in(user)  # this browser goes on in a new session of the new version; all others have ended
    flash(_("Alle anderen Sitzungen sind beendet."), "ok")
    return redirect(url_for("account.index"))


@bp.post("/account/sessions/<int:session_id>/end")
def end_session(session_id: int) -> Any:
    """Logs out one other device (only one's own sessions: any other id answers 404)."""
    if not end_login_session(db.session, current_user, session_id):
        raise Refusal("session_unknown", "Diese Sitzung gibt es nicht (mehr).",
                      "This session does not exist (any more).", status=404)
    flash(_("Das Gerät ist abgemeldet."), "ok")
    return redirect(url_for("account.index"))


def device(user_agent: str) -> str:
    """A short, readable name for a browser ("Firefox auf Windows"), from its User-Agent."""
    browsers = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium", "Chromium"),
                ("Safari/", "Safari")]
    systems = [("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
               ("Mac OS X", "macOS"), ("Linux", "Linux")]
    browser = next((name for marker, name in browsers if marker in user_agent), "")
    system = next((name for marker, name in systems if marker in user_agent), "")
    if browser and system:
        return _("%(browser)s auf %(system)s", browser=browser, system=system)
    return browser or system or _("unbekanntes Gerät")


@bp.post("/account/tokens")
def create_token() -> Any:
    name = request.form.get("name", "")
    try:
        _token, secret = accounts.create_token(db.session, current_user, name, actor=current_user)
    except Refusal as refusal:
        return _page(error=refusal, token_name=name, status=refusal.status)
    return _page(new_token=secret, token_name=name, status=201)


@bp.post("/account/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> Any:
    # Only one's own tokens: someone else's answers 404 (admins revoke others' tokens on the admin pages).
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        raise Refusal("token_unknown", "Diesen Schlüssel gibt es nicht (oder nicht für Sie).",
                      "This token does not exist (or not for you).", status=404)
    accounts.revoke_token(db.session, current_user, token_id)
    flash(_("Der Schlüssel „%(name)s“ ist widerrufen und gilt ab sofort nicht mehr.", name=token.name), "ok")
    return redirect(url_for("account.index"))
