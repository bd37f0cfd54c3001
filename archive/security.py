"""Response headers that make the browser refuse what the archive never does: run inline or foreign
script, be framed by another site, guess content types, or leak the page address to other sites. Also the
session cookie's attributes, and that no cache keeps a page made for one logged-in person."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import SecurityError

from .errors import Refusal

# No page of ours has script; images, styles and forms stay on this site.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "img-src 'self' data:",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

# Browsers accept a cookie of this name only if it is Secure, for the whole site (Path=/) and has no Domain:
# a sibling subdomain or a plain-http page cannot plant or overwrite it.
HOST_ONLY_SESSION_COOKIE = "__Host-session"


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, marked Secure whenever the request came over TLS (directly, or as the
    trusted proxies say), not only when SESSION_COOKIE_SECURE is set: behind TLS it never travels in clear."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)


def init_app(app: Flask, settings: dict[str, Any] | None = None) -> None:
    settings = settings or {}
    app.session_interface = SessionCookies()
    if app.config.get("SESSION_COOKIE_SECURE") and "SESSION_COOKIE_NAME" not in settings:
        app.config["SESSION_COOKIE_NAME"] = HOST_ONLY_SESSION_COOKIE

    @app.errorhandler(SecurityError)
    def _untrusted_host(_error: SecurityError) -> Response:
        # A Host header that TRUSTED_HOSTS (site file) does not list. Plain text: the page template would build
        # links, and with an untrusted host there is no address to build them from.
        return Response("Diese Adresse gehört nicht zu diesem Archiv. / This address does not belong to this "
                        "archive.\n", status=400, mimetype="text/plain")

    @app.before_request
    def _no_nul_characters() -> None:
        # Nobody types a NUL character; PostgreSQL refuses text holding one (a 500 there), so it never gets that far.
        if "\x00" in request.path:
            raise Refusal("not_found", "Diese Seite gibt es nicht.", "There is no such page.", status=404)
        # Query strings only: typed form text is cleaned of control characters where it is stored
        # (text.clean_typed), and a form value PostgreSQL refuses anyway is a 400 (errors_web).
        if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
            raise Refusal("nul_character", "Die Anfrage enthält ein unzulässiges Steuerzeichen (NUL).",
                          "The request contains a character that is not allowed (NUL).", status=400)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if "Cache-Control" not in headers and _made_for_someone():
            # A page for a logged-in person stays out of shared caches and the browser's disk cache (a shared
            # computer in a club house); responses that chose their own caching (images) keep it.
            headers["Cache-Control"] = "private, no-store"
        return response


def _made_for_someone() -> bool:
    """Whether this request looked at a logged-in person. Only what Flask-Login already loaded: asking the
    database here could fail the very error page that says the database is gone."""
    user = g.get("_login_user")
    return bool(user is not None and user.is_authenticated)


def same_site_path(target: str | None) -> str | None:
    """``target`` if it is a path of this site, else None: a crafted ``?next=`` must not send people elsewhere.
    Browsers read a backslash as a slash and drop tabs and line breaks, so "/\\evil.example" and
    "/<tab>/evil.example" mean "//evil.example": both are refused with anything that names a scheme or a host."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(char) < 0x21 or ord(char) == 0x7F for char in target)):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return None
